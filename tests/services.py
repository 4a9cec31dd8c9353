"""Servers a test starts (an MLflow tracking server) and waiting for them (MLflow, moto's S3,
radosgw, ...) to answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .browser import free_port


def wait_for_http(url: str, proc: subprocess.Popen, what: str, seconds: float = 180) -> None:
    """Return once ``url`` answers (any HTTP status: a 404 for / means the server is up); fail
    when ``proc`` exits first or after ``seconds`` (generous: a loaded machine is slow, not wrong)."""
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError as e:
            if getattr(e, "code", None):
                return
        if proc.poll() is not None:
            out = proc.stdout.read()[-3000:] if proc.stdout else ""
            raise AssertionError(f"{what} exited: {out}")
        assert time.time() < deadline, f"{what} did not answer in {seconds} s"
        time.sleep(0.5)


def mlflow_server(backend: str, artifacts: str | Path, log_dir: Path, env: dict[str, str] | None = None):
    """An MLflow tracking server on a free loopback port, its backend store handed over by
    environment (never on the command line: ``ps`` shows that) and its artifacts proxied to
    ``artifacts`` (a folder or an ``s3://`` URL). Returns the process and its URL; the caller
    stops it (``os.killpg``: it runs in a session of its own)."""
    port = free_port()
    log = open(log_dir / "mlflow-server.log", "w")  # noqa: SIM115 - the server's; a pipe nobody reads would block it
    exe = Path(sys.executable).parent / "mlflow"
    full = {**os.environ, **(env or {}), "MLFLOW_BACKEND_STORE_URI": backend}
    full["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    server = subprocess.Popen(
        [str(exe), "server", "--serve-artifacts", "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    wait_for_http(f"{uri}/health", server, f"mlflow server (log: {log.name})", seconds=300)  # migrations
    return server, uri
