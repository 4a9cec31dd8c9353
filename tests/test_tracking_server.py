"""The tracking-server path under load: eight trial processes logging at once to a real MLflow
server lose no metric point."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .browser import free_port

STEPS, KEYS = 40, ("loss", "top1", "lr", "val_loss", "epoch_time_s")


def _trial(uri: str, experiment_id: str, n: int) -> None:
    from assembled.tracking.callback import MlflowCallback
    from assembled.tracking.store import client

    c = client(uri)
    run = c.create_run(experiment_id, run_name=f"trial{n}")
    cb = MlflowCallback(c, run.info.run_id)
    for step in range(1, STEPS + 1):
        cb.log_metrics({k: step + i / 10 for i, k in enumerate(KEYS)}, step)
    c.set_terminated(run.info.run_id)


@pytest.mark.slow
def test_eight_trials_logging_at_once_lose_nothing(tmp_path):
    port = free_port()
    exe = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(exe), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}", "--serve-artifacts",
         "--artifacts-destination", str(tmp_path / "a"), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        client = MlflowClient(uri)
        exp = client.create_experiment("load")
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_trial, args=(uri, exp, n)) for n in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [p.exitcode for p in procs] == [0] * 8
        runs = client.search_runs([exp])
        assert len(runs) == 8
        for r in runs:
            for k in KEYS:
                steps = sorted(m.step for m in client.get_metric_history(r.info.run_id, k))
                assert steps == list(range(1, STEPS + 1)), (r.info.run_name, k)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _serve(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    exe = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(exe), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}", "--serve-artifacts",
         "--artifacts-destination", str(tmp_path / "a"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server, port
        except OSError:
            assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
            time.sleep(0.5)


@pytest.mark.slow
def test_a_password_in_the_tracking_url_is_never_shown_or_stored(tmp_path):
    """A tracking URL with credentials (http://user:password@host) works, and the password
    reaches no terminal line, MLflow tag or param (printed links say ***)."""
    server, port = _serve(tmp_path)
    secret = "s3cr3t-pw"
    uri = f"http://user:{secret}@127.0.0.1:{port}"
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ASSEMBLED_RAY_TMP": str(tmp_path / "ray")}
        exe = Path(sys.executable).parent / "assembled"
        args = ["ablation", "6", "--profile", "smoke", "--rows", "T0", "--executor", "local"]
        r = subprocess.run([str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert secret not in r.stdout + r.stderr and "user:***@127.0.0.1" in r.stdout
        client = MlflowClient(f"http://127.0.0.1:{port}")
        exp = client.get_experiment_by_name("table06")
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 2 and {x.info.status for x in runs} == {"FINISHED"}  # parent and T0
        for run in runs:
            stored = list(run.data.tags.values()) + list(run.data.params.values())
            assert not [v for v in stored if secret in v], run.info.run_name
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
