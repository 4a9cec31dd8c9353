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
