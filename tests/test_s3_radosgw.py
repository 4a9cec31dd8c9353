"""S3 as deployed, against a real S3 server the test starts (Ceph's radosgw, see tests/ceph.py),
not only moto: MLflow's artifacts and Ray's storage (``ASSEMBLED_RAY_STORAGE``) in its buckets
for a table that finishes. A failing storage (one line, every run FAILED) is test_storage_faults'
test, run against both moto and radosgw. The client environment carries credentials only: the
checksum settings that radosgw needs are the platform's to apply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient

from . import ceph
from .conftest import cli
from .services import mlflow_server

pytestmark = [pytest.mark.slow, ceph.NEEDED]
CHECKSUM_ENV = ("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")


@pytest.fixture(scope="module")
def gateway():
    with ceph.radosgw() as gw:
        s3 = boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id=gw.access_key,
                          aws_secret_access_key=gw.secret_key, region_name="us-east-1")  # fmt: skip
        for bucket in ("mlflow", "ray"):
            s3.create_bucket(Bucket=bucket)
        yield gw, s3


def _client_env(gw: ceph.Gateway, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in (*CHECKSUM_ENV, "MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    ray_tmp = tempfile.mkdtemp(prefix="ar", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    return {**base, **gw.env(), "ASSEMBLED_RAY_TMP": ray_tmp}


def test_the_gateway_refuses_uploads_that_moto_accepts(gateway):
    """Why the platform's settings matter: a pyarrow upload as Ray makes it, with the default
    checksum behaviour, is refused by this server (the failure seen in issue 26)."""
    gw, _ = gateway
    code = (
        "import pyarrow.fs as f;"
        f"fs = f.S3FileSystem(endpoint_override='{gw.host_port}', scheme='http', region='us-east-1');"
        "s = fs.open_output_stream('ray/probe'); s.write(b'x' * 1000); s.close()"
    )
    env = {k: v for k, v in os.environ.items() if k not in CHECKSUM_ENV} | gw.env()
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "411" in r.stderr, r.stderr[-2000:]


def test_a_table_with_artifacts_and_ray_storage_on_radosgw(tmp_path, gateway):
    gw, s3 = gateway
    env = _client_env(gw, tmp_path)
    server, uri = mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", "s3://mlflow/", tmp_path, env=env)
    try:
        env |= {
            "MLFLOW_TRACKING_URI": uri,
            "ASSEMBLED_RAY_STORAGE": f"s3://ray/runs?endpoint_override={gw.host_port}&scheme=http",
        }
        r = cli("ablation", "6", "--profile", "smoke", "--rows", "T0", "T1", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("table06").experiment_id], "tags.kind = 'trial'")
        assert sorted(x.data.tags["row"] for x in runs) == ["T0", "T1"]
        assert {x.info.status for x in runs} == {"FINISHED"}
        stored = [o["Key"] for o in s3.list_objects_v2(Bucket="mlflow").get("Contents", [])]
        assert any(k.endswith("config.json") for k in stored), stored  # each run's config, through the server
        assert s3.list_objects_v2(Bucket="ray", Prefix="runs/table06").get("KeyCount", 0) > 0  # Tune's state
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
