"""Shared fixtures: a real SQLite MLflow store per test, the shared CIFAR-10 JPEGs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
sys.path.insert(0, str(ROOT / "platform"))


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def cifar10_folder(tmp_path_factory) -> Path:
    """The shared CIFAR-10 JPEGs extracted once per session (skips where ../shared is absent)."""
    train_tar = SHARED_CIFAR / "cifar10-train.tar.gz"
    test_tar = SHARED_CIFAR / "cifar10-test.tar.gz"
    if not (train_tar.exists() and test_tar.exists()):
        pytest.skip(f"real CIFAR-10 not found at {SHARED_CIFAR} (only present beside the team's checkout)")
    out = tmp_path_factory.mktemp("cifar10")
    for tar in (train_tar, test_tar):
        subprocess.run(["tar", "-xzf", str(tar), "-C", str(out)], check=True)
    return out


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would. No timeout: a slow but correct run on a
    loaded machine must not fail (pytest's own session is the limit)."""
    exe = Path(sys.executable).parent / "assembled"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(exe), *args], cwd=cwd, env=full_env, capture_output=True, text=True)


@pytest.fixture
def ablation_env(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    # Ray's socket paths must stay under 107 bytes: a short temp dir, removed afterwards
    ray_tmp = tempfile.mkdtemp(prefix="ar", dir="/tmp")
    monkeypatch.setenv("ASSEMBLED_RAY_TMP", ray_tmp)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root = tmp_path / "ablations"
    root.mkdir()
    shutil.copy(ROOT / "ablations" / "profiles.yaml", root / "profiles.yaml")
    yield tmp_path, root, MlflowClient(mlflow_uri)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def children(client, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=1000)
