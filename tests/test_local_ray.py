"""The Ray a command starts on this machine: Ray 2.60 binds its ports to every interface, so it
requires a token only this process and its workers hold (runner/executor.py:require_token), not
the user-wide ~/.ray/auth_token every local Ray of the user shares."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from assembled.runner.executor import RayExecutor

CONNECT = "import ray; ray.init(address='{}'); print('CONNECTED', ray.cluster_resources().get('CPU'))"


@pytest.mark.slow
def test_a_local_ray_refuses_a_client_without_its_token(tmp_path, monkeypatch):
    ray_tmp = tempfile.mkdtemp(prefix="ar", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    monkeypatch.setenv("ASSEMBLED_RAY_TMP", ray_tmp)
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    executor = RayExecutor(None, tmp_path / "runs")
    executor.start()
    try:
        import ray

        code = CONNECT.format(ray.get_runtime_context().gcs_address)
        outsider = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        for env in (outsider, {**outsider, "RAY_AUTH_MODE": "token"}):  # no token; the user-wide ~/.ray one
            refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            assert refused.returncode != 0 and "CONNECTED" not in refused.stdout, refused.stdout[-2000:]
        wrong = {**outsider, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}
        guessed = subprocess.run([sys.executable, "-c", code], env=wrong, capture_output=True, text=True)
        assert guessed.returncode != 0 and "CONNECTED" not in guessed.stdout, guessed.stdout[-2000:]
        holder = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True)
        assert "CONNECTED" in holder.stdout, holder.stderr[-2000:]  # the token holder (as a trial) gets in
    finally:
        executor.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
