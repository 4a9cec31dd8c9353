"""Waiting for a server a test started (MLflow, moto's S3, ...) to answer."""

from __future__ import annotations

import subprocess
import time
import urllib.request


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
