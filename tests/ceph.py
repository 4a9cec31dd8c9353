"""A real S3 server for tests: Ceph's RADOS gateway (Debian's ``radosgw``) over a one-monitor,
one-OSD Ceph cluster on loopback, its objects in memory (memstore), cephx off. It speaks S3 as
radosgw does in production, including what moto forgives (it answers pyarrow's aws-chunked
uploads with ``411 MissingContentLength`` unless the client sends a content length), which is
why the platform's S3 settings are tested against it. Started in about 15 s; ``make install-s3``
installs the packages (``.ci/run`` does)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .browser import free_port
from .services import wait_for_http

BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool", "ceph-authtool")


def missing() -> str | None:
    """Why the gateway cannot start here (None when it can)."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return f"Ceph's radosgw is not installed ({', '.join(absent)} missing: `make install-s3`, Debian's apt)"
    return None


NEEDED = pytest.mark.skipif(missing() is not None, reason=str(missing()))  # skip, saying why


@dataclass(frozen=True)
class Gateway:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str

    @property
    def host_port(self) -> str:
        return self.endpoint.removeprefix("http://")

    def env(self) -> dict[str, str]:
        """A client's credentials (no checksum settings: applying those is the platform's job)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }


def _config(folder: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 1073741824
run dir = {folder}/run
log file = {folder}/log/$name.log
admin socket = {folder}/run/$name.asok
[mon.a]
mon data = {folder}/mon.a
[osd.0]
osd data = {folder}/osd.0
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {folder}/rgw
"""


def _ceph(conf: Path, *args: str) -> str:
    """A ``ceph`` command, retried while the monitor comes up (a loaded machine is slow, not wrong)."""
    deadline = time.time() + 120
    while True:
        r = subprocess.run(["ceph", "-c", str(conf), "--connect-timeout", "20", *args], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
        assert time.time() < deadline, f"ceph {' '.join(args)}: {r.stderr[-2000:]}"
        time.sleep(1)


@contextmanager
def radosgw() -> Iterator[Gateway]:
    """Start mon, OSD and gateway in a folder of their own (short, under /tmp: admin sockets'
    paths must stay under 107 bytes); yield the gateway with a user's keys; stop every process
    it started and remove the folder. A start that fails is tried once more from scratch (new
    folder, fsid and ports): seen once in a full suite, an OSD whose monitor answered 'wrong
    fsid' and a gateway that then waited out its 300-s initialisation."""
    for attempt in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix="ceph", dir="/tmp"))
        procs: list[subprocess.Popen] = []
        try:
            gateway = _start(folder, procs)
            break
        except (AssertionError, subprocess.CalledProcessError) as e:
            _stop(procs)
            logs = {p.name: p.read_text(errors="replace")[-800:] for p in (folder / "log").iterdir()}
            shutil.rmtree(folder, ignore_errors=True)
            if attempt == 2:
                raise AssertionError(f"the Ceph gateway did not start (twice): {e}; logs: {logs}") from e
    try:
        yield gateway
    finally:
        _stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


def _start(folder: Path, procs: list[subprocess.Popen]) -> Gateway:
    """Make and start the cluster in ``folder``, appending each daemon to ``procs``."""
    for d in ("run", "log", "mon.a", "osd.0", "rgw"):
        (folder / d).mkdir()
    fsid, mon_port, rgw_port = str(uuid.uuid4()), free_port(), free_port()
    conf = folder / "ceph.conf"
    conf.write_text(_config(folder, fsid, mon_port, rgw_port))
    c = ["-c", str(conf)]

    def daemon(*args: str) -> subprocess.Popen:
        log = open(folder / "log" / f"{args[0]}.out", "wb")  # noqa: SIM115 - the daemon's, closed with it
        procs.append(subprocess.Popen([*args, *c, "-f"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return procs[-1]

    subprocess.run(["monmaptool", "--create", "--add", "a", f"v1:127.0.0.1:{mon_port}", "--fsid", fsid,
                    str(folder / "monmap")], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["ceph-authtool", "--create-keyring", str(folder / "mon.keyring"), "--gen-key", "-n", "mon.",
                    "--cap", "mon", "allow *"], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", str(folder / "monmap"),
                    "--keyring", str(folder / "mon.keyring")], check=True, capture_output=True)  # fmt: skip
    daemon("ceph-mon", "-i", "a")
    osd_uuid = str(uuid.uuid4())  # named on both sides: the OSD boots as the one the monitor made
    osd = _ceph(conf, "osd", "create", osd_uuid)
    subprocess.run(["ceph-osd", *c, "-i", osd, "--mkfs", "--osd-uuid", osd_uuid], check=True, capture_output=True)
    _wait_up(conf, daemon("ceph-osd", "-i", osd))
    daemon("radosgw", "-n", "client.rgw")
    endpoint = f"http://127.0.0.1:{rgw_port}"
    wait_for_http(endpoint, procs[-1], "radosgw", 300)
    access, secret = uuid.uuid4().hex[:20].upper(), uuid.uuid4().hex
    user = ["user", "create", "--uid=app", "--display-name=app", f"--access-key={access}", f"--secret-key={secret}"]
    subprocess.run(["radosgw-admin", *c, *user], check=True, capture_output=True)
    return Gateway(endpoint, access, secret)


def _wait_up(conf: Path, osd: subprocess.Popen, seconds: float = 180) -> None:
    """Until the monitor counts the OSD up: a gateway started before waits out its whole
    initialisation timeout (300 s) when the OSD never comes up."""
    deadline = time.time() + seconds
    while json.loads(_ceph(conf, "osd", "stat", "-f", "json")).get("num_up_osds", 0) < 1:
        assert osd.poll() is None, f"ceph-osd exited (rc {osd.returncode})"
        assert time.time() < deadline, f"the OSD was not up after {seconds:.0f} s"
        time.sleep(1)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=60)
