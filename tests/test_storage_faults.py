"""Hostile storage: a damaged SQLite store, a tracking server that does not answer, a read-only
working folder, a full disk. Each ends a command in one line naming the cause and what to do,
with a non-zero exit, and leaves MLflow true (nothing RUNNING or SCHEDULED); after a full disk
the next invocation resumes. Read-only folders and full disks are real: a read-only bind mount
and a small tmpfs in a mount namespace of the test's own (`unshare -m`), which needs root."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from . import ceph
from .browser import free_port
from .conftest import cli
from .services import wait_for_http

EXE = Path(sys.executable).parent / "assembled"
ROWS = ["ablation", "6", "--profile", "smoke", "--rows", "T0", "T1", "--executor", "local"]


def _store_with_runs(folder: Path) -> Path:
    db = folder / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("table06")
    for i in range(20):
        run = client.create_run(exp, run_name=f"r{i}", tags={"row": f"T{i % 6}", "note": "x" * 2000})
        client.log_metric(run.info.run_id, "top1", float(i))
        client.set_terminated(run.info.run_id)
    return db


def _one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    for w in words:
        assert w in errors[0], errors[0]


@pytest.mark.parametrize("damage", ["truncated", "overwritten page"])
def test_a_damaged_store_is_one_line_for_every_command(tmp_path, damage):
    db = _store_with_runs(tmp_path)
    if damage == "truncated":
        os.truncate(db, db.stat().st_size // 2)
    else:  # the file keeps its size and opens; only SQLite's integrity check sees the damage
        page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
        with open(db, "r+b") as f:
            f.seek(page * 3)
            f.write(b"\xff" * page)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    for args in (["report", "6"], ["plan", "6", "--profile", "smoke"], ["dashboard", "6"], ROWS):
        _one_line_error(cli(*args, cwd=tmp_path, env=env), str(db), "damaged", "move it aside")


_KILLED_WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=1")  # spill the changed pages into the file: the journal is hot
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE tags SET value = 'half-written' WHERE key = 'note'")
print("writing", flush=True)
time.sleep(600)
"""


def test_a_writer_killed_mid_write_leaves_a_store_that_recovers(tmp_path):
    """SIGKILL in the middle of a write (as CI once saw after `assembled train` was killed) leaves
    mlflow.db-journal; the next command rolls it back (SQLite's recovery), rather than calling the
    store damaged because a read-only connection may not roll it back."""
    db = _store_with_runs(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    journal = db.with_name("mlflow.db-journal")
    assert journal.stat().st_size > 0
    r = cli("plan", "6", "--profile", "smoke", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert not journal.exists()
    notes = sqlite3.connect(db).execute("SELECT DISTINCT value FROM tags WHERE key = 'note'").fetchall()
    assert notes == [("x" * 2000,)]


def test_a_tracking_server_that_does_not_answer_is_one_line(tmp_path):
    uri = f"http://user:pw@127.0.0.1:{free_port()}"
    for args in (["report", "6"], ROWS):
        r = cli(*args, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
        _one_line_error(r, "does not answer", "user:***@127.0.0.1")
        assert ":pw@" not in r.stderr


def _in_mount_namespace(mount: str, folder: Path, args: list[str], env: dict) -> subprocess.CompletedProcess:
    """``assembled ARGS`` in ``folder`` after ``mount`` (a shell command) in a namespace of its own."""
    script = f'{mount} && cd "{folder}" && exec "{EXE}" "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args], env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip


def _mounts_allowed() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"], capture_output=True)
    return None if r.returncode == 0 else "mount namespaces need root (CAP_SYS_ADMIN) here"


needs_mounts = pytest.mark.skipif(_mounts_allowed() is not None, reason=f"cannot mount: {_mounts_allowed()}")


@needs_mounts
def test_a_read_only_folder_is_one_line_and_creates_nothing(tmp_path):
    folder, store = tmp_path / "ro", tmp_path / "store"
    folder.mkdir()
    store.mkdir()
    ro = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}"'
    r = _in_mount_namespace(ro, folder, ROWS, {})  # the default store is ./mlflow.db
    _one_line_error(r, str(folder), "read-only", "writable folder")
    search = ["search", "7", "--row", "E3", "--trials", "1", "--profile", "smoke", "--executor", "local"]
    r = _in_mount_namespace(ro, folder, search, {})
    _one_line_error(r, str(folder), "read-only", "writable folder")
    uri = f"sqlite:///{store / 'mlflow.db'}"  # the store elsewhere: checkpoints still go to ./runs
    r = _in_mount_namespace(ro, folder, ROWS, {"MLFLOW_TRACKING_URI": uri})
    _one_line_error(r, f"{folder}/runs", "read-only", "writable folder")
    assert not list(folder.iterdir()) and not (store / "mlflow.db").exists()


@pytest.mark.slow
@needs_mounts
def test_a_full_disk_fails_every_run_truthfully_and_the_next_run_resumes(tmp_path):
    folder, store = tmp_path / "work", tmp_path / "store"
    folder.mkdir()
    store.mkdir()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}", "ASSEMBLED_RAY_TMP": str(tmp_path / "ray")}
    full = f'mount -t tmpfs -o size=48k none "{folder}"'  # room for a folder or two, not a checkpoint
    r = _in_mount_namespace(full, folder, ROWS, env)
    _one_line_error(r, "No space left on device", "run the same command to resume")
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("table06").experiment_id])
    assert len(runs) == 3 and {x.info.status for x in runs} == {"FAILED"}
    for run in runs:
        assert "no space left on device" in run.data.tags["failure_reason"].lower(), run.data.tags
    again = cli(*ROWS, cwd=folder, env=env)  # space again (the real folder): the rows continue
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "Ray instance" not in r.stderr + again.stderr  # --executor local starts no Ray to name a node
    rows = [x for x in client.search_runs([runs[0].info.experiment_id]) if x.data.tags.get("row")]
    assert sorted(x.info.status for x in rows) == ["FINISHED", "FINISHED"]
    assert {x.info.run_id for x in rows} <= {x.info.run_id for x in runs}  # the same runs, continued


@contextmanager
def _s3_server(kind: str) -> Iterator[tuple[str, dict[str, str]]]:
    """An S3 endpoint (host:port) and a client's credentials: moto's HTTP server, or Ceph's radosgw
    (a real S3 server, stricter than moto; see tests/ceph.py)."""
    if kind == "radosgw":
        with ceph.radosgw() as gw:
            yield gw.host_port, gw.env()
        return
    port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", moto, "moto_server")
        yield f"127.0.0.1:{port}", {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                                    "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    finally:
        moto.terminate()
        moto.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["moto", pytest.param("radosgw", marks=ceph.NEEDED)])
def test_ray_storage_that_fails_is_one_line_and_every_run_failed(tmp_path, server):
    """Tune's storage on an S3 endpoint whose bucket does not exist: the invocation ends in one
    line naming the storage and what to check, and no run it created is left SCHEDULED or RUNNING."""
    ray_tmp = tempfile.mkdtemp(prefix="ar", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    try:
        with _s3_server(server) as (endpoint, creds):
            env = {
                **creds,
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "ASSEMBLED_RAY_TMP": ray_tmp,
                "ASSEMBLED_RAY_STORAGE": f"s3://no-such-bucket/runs?endpoint_override={endpoint}&scheme=http",
            }
            r = cli("ablation", "6", "--profile", "smoke", "--rows", "T0", "T1", cwd=tmp_path, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    _one_line_error(r, "Ray's storage s3://no-such-bucket/runs", "ASSEMBLED_RAY_STORAGE")
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("table06").experiment_id])
    assert len(runs) == 3 and {x.info.status for x in runs} == {"FAILED"}, [x.info.status for x in runs]
    assert all("storage" in x.data.tags.get("failure_reason", "") for x in runs)
