"""The console script as users call it."""

from __future__ import annotations

import json

from .conftest import cli


def test_models_lists_names():
    r = cli("models")
    assert r.returncode == 0
    assert "assemble_resnet50" in r.stdout and "efficientnet_b7" in r.stdout


def test_profile_json():
    r = cli("profile", "resnet50d", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["params"] == 25_576_264 and abs(out["macs"] / 1e9 - 4.33) < 0.02


def test_profile_unknown_model():
    r = cli("profile", "resnet51")
    assert r.returncode == 2 and "unknown model 'resnet51'" in r.stderr


def test_uploads_use_checksums_s3_compatible_stores_accept(monkeypatch):
    """MinIO and Ceph radosgw answer the AWS SDKs' default checksum trailers with HTTP 411: every
    command, and every trial process on any node, asks for checksums only where required, unless
    the user chose otherwise."""
    import os
    import subprocess
    import sys

    from assembled.runner.executor import worker_env

    show = "from assembled.cli import main; main(['tables']); import os; print(os.environ[{!r}])"
    for key in ("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"):
        env = {k: v for k, v in os.environ.items() if k != key}
        r = subprocess.run([sys.executable, "-c", show.format(key)], env=env, capture_output=True, text=True)
        assert r.stdout.splitlines()[-1] == "WHEN_REQUIRED", r.stderr
        r = subprocess.run([sys.executable, "-c", show.format(key)], env={**env, key: "WHEN_SUPPORTED"},
                           capture_output=True, text=True)  # fmt: skip
        assert r.stdout.splitlines()[-1] == "WHEN_SUPPORTED", r.stderr
        monkeypatch.delenv(key, raising=False)
        assert worker_env()[key] == "WHEN_REQUIRED"


def test_a_gpu_profile_without_a_gpu_stops_before_anything_is_recorded(tmp_path):
    """Its runs would be recorded as CUDA runs (TrainConfig.compute): where the trials would run
    on this GPU-less machine, the command refuses in one line before Ray starts or a store or run
    is made; plan says the same. (On a machine with a GPU this test has nothing to refuse.)"""
    import pytest

    from assembled.runner.resources import this_machine

    if "GPU" in this_machine():
        pytest.skip("this machine has a GPU: a GPU profile is served here")
    from PIL import Image

    data = tmp_path / "data"  # an ImageFolder of its own: the profile's CIFAR-10 is the team checkout's
    for split, n in (("train", 1024), ("val", 1)):
        (data / split / "a").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4)).save(data / split / "a" / f"{i}.png")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "RAY_ADDRESS": ""}
    for executor in ("ray", "local"):
        args = ["--profile", "cifar", "--data", str(data), "--rows", "T0", "--executor", executor]
        r = cli("ablation", "6", *args, cwd=tmp_path, env=env)
        assert r.returncode == 2 and "profile cifar trains on GPUs" in r.stderr, r.stderr[-2000:]
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()
    plan = cli("plan", "6", "--profile", "cifar", "--data", str(data), cwd=tmp_path, env=env)
    assert plan.returncode == 0 and "this machine has none" in plan.stdout
