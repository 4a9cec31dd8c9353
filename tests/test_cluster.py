"""A cluster on loopback where nothing is shared but the services: an S3-compatible object store
(moto's real HTTP endpoint) holding Ray's storage and MLflow's artifacts, an MLflow server as the
tracking URI, a Ray head and a Ray worker node started by `ray start` from their own folders with
their own work folders, and the driver in a third folder. Every process the test starts is
stopped by it."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient

from .browser import free_port
from .conftest import ROOT, cli
from .services import wait_for_http

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow, pytest.mark.serial]  # it ends with `ray stop`: alone


@pytest.fixture
def services(tmp_path):
    """moto S3 + an MLflow server with its artifacts in S3; yields the environment of a client."""
    procs: list[subprocess.Popen] = []
    s3_port, mlflow_port = free_port(), free_port()
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    endpoint = f"http://127.0.0.1:{s3_port}"
    base = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env = {**base, **creds, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    try:
        moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
        procs.append(subprocess.Popen(moto, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))  # fmt: skip
        wait_for_http(endpoint, procs[-1], "moto_server")
        s3 = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in creds.items() if "KEY" in k})
        for bucket in ("mlflow", "ray"):
            s3.create_bucket(Bucket=bucket)
        server_dir = tmp_path / "server"
        server_dir.mkdir()
        mlflow = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{server_dir / 'mlflow.db'}",
                  "--artifacts-destination", "s3://mlflow/", "--serve-artifacts", "--host", "127.0.0.1",
                  "--port", str(mlflow_port), "--workers", "1"]  # fmt: skip
        procs.append(subprocess.Popen(mlflow, cwd=server_dir, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))  # fmt: skip
        wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", procs[-1], "mlflow server", 180)
        storage = f"s3://ray/runs?endpoint_override=127.0.0.1:{s3_port}&scheme=http"
        yield {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}", "ASSEMBLED_RAY_STORAGE": storage}, s3
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=60)


def _node_env(folder: Path) -> dict[str, str]:
    """A node's own code (its copy, first on the path of every worker it starts) and work folder."""
    return {"PYTHONPATH": str(folder / "platform"), "ASSEMBLED_SCRATCH": str(folder / "scratch")}


def test_table_on_two_nodes_without_a_shared_disk(tmp_path, services):
    env, s3 = services
    head_dir, worker_dir, driver_dir = (tmp_path / n for n in ("head", "worker", "driver"))
    for d in (head_dir, worker_dir, driver_dir):
        d.mkdir()
    for d in (head_dir, worker_dir):  # each node runs its own copy of the code
        shutil.copytree(ROOT / "platform", d / "platform", ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    ray_tmp = Path(f"/tmp/ac{secrets.token_hex(3)}")  # Ray's socket paths must stay short
    cluster = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    # every trial process dies once, on whichever node it runs, after its first epoch's checkpoint
    nodes = {**cluster, "ASSEMBLED_FAIL_ONCE_AT_EPOCH": "T2:1"}
    try:
        head = [str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                f"--temp-dir={ray_tmp}"]  # fmt: skip
        subprocess.run(head, cwd=head_dir, env={**nodes, **_node_env(head_dir)}, check=True, capture_output=True)
        worker = [str(BIN / "ray"), "start", f"--address={address}", "--num-cpus=1"]
        subprocess.run(worker, cwd=worker_dir, env={**nodes, **_node_env(worker_dir)}, check=True, capture_output=True)
        done = cli("ablation", "6", "--profile", "smoke", "--address", address, cwd=driver_dir, env=cluster)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=cluster, capture_output=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("table06")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    by_row = {r.data.tags["row"]: r for r in runs}
    assert sorted(by_row) == ["T0", "T1", "T2", "T3", "T4", "T5"] and len(runs) == 6  # one run per row
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["ray.node"] for r in runs}) == 2  # trials ran on both nodes
    # ... each with its node's copy of the code, none with the driver's
    assert {r.data.tags["code_path"] for r in runs} == {str(head_dir / "platform/assembled"),
                                                        str(worker_dir / "platform/assembled")}  # fmt: skip
    killed = by_row["T2"]
    assert killed.data.tags.get("fault_injected") == "1"  # its process died once and was retried
    steps = [m.step for m in client.get_metric_history(killed.info.run_id, "loss")]
    assert steps == [1]  # from its checkpoint: the epoch is not trained or logged twice
    # the checkpoints live with the runs (S3), Tune's state in Ray's S3 storage; the driver's
    # runs/ holds only the summary, and each node worked in its own folder
    assert s3.list_objects_v2(Bucket="mlflow").get("KeyCount", 0) > 0
    assert s3.list_objects_v2(Bucket="ray", Prefix="runs/table06").get("KeyCount", 0) > 0
    left = sorted(str(p.relative_to(driver_dir)) for p in (driver_dir / "runs").rglob("*") if p.is_file())
    assert left == ["runs/table06/summary.csv"], left
    assert list((head_dir / "scratch").rglob("last.pt")) or list((worker_dir / "scratch").rglob("last.pt"))
