"""Shared fixtures: a real SQLite MLflow store per test, the shared CIFAR-10 JPEGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
