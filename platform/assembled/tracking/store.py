"""Where runs go: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db`` (MLflow 3's own
default, made absolute so Ray trials, which run in their own folders, log to the same file).

SQLite allows one writer at a time: experiments are created once by the orchestrator, and
every write retries on ``database is locked``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import mlflow
from mlflow.tracking import MlflowClient

T = TypeVar("T")


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def retry_locked(fn: Callable[[], T], attempts: int = 8) -> T:
    """Call ``fn``, retrying with jittered back-off while SQLite reports a lock."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # MlflowException / sqlalchemy OperationalError
            if "locked" not in str(e).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i * (0.5 + random.random()))
    raise AssertionError("unreachable")


def client(uri: str | None = None) -> MlflowClient:
    return MlflowClient(tracking_uri=uri or tracking_uri())


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Experiment id for ``name``, created (with the store's schema) when absent."""
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    c = client(uri)
    exp = retry_locked(lambda: c.get_experiment_by_name(name))
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            retry_locked(lambda: c.restore_experiment(exp.experiment_id))
        return exp.experiment_id
    try:
        return retry_locked(lambda: c.create_experiment(name))
    except Exception:
        exp = c.get_experiment_by_name(name)  # created concurrently by someone else
        if exp is None:
            raise
        return exp.experiment_id
