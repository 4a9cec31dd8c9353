"""A real PostgreSQL server for tests: Debian's binaries, initdb + pg_ctl on a free loopback
port, password authentication, removed afterwards. PostgreSQL refuses to run as root, so under
root the server runs as the `postgres` system user (which Debian's package creates)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .browser import free_port

USER, PASSWORD = "assembled", "s3cr3t-pg-pw"


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin may link initdb alone
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def missing() -> str | None:
    """Why no server can be started here (None: it can)."""
    if _bin_dir() is None:
        return "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to drop to the 'postgres' user"
    return None


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Yields ``postgresql://USER:PASSWORD@127.0.0.1:PORT`` (add ``/dbname``)."""
    bins = _bin_dir()
    assert bins is not None, missing()
    root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    run(str(bins / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256")
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off"
    run(str(bins / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new database on the server at ``url`` (PostgreSQL's own createdb: the test's set-up
    needs no Python driver); returns its URL."""
    port = url.rsplit(":", 1)[1]
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    createdb = [str(_bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", USER, name]
    subprocess.run(createdb, check=True, capture_output=True, env=env)
    return f"{url}/{name}"
