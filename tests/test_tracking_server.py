"""The tracking-server path under load: eight trial processes logging at once to a real MLflow
server lose no metric point."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .browser import free_port
from .services import wait_for_http

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
        wait_for_http(f"{uri}/health", server, "mlflow server")
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
