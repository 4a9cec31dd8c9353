"""Where runs go: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db`` (MLflow 3's own
default, made absolute so Ray trials, which run in their own folders, log to the same file).

SQLite allows one writer at a time: experiments are created once by the orchestrator, and
every write retries on ``database is locked``. MLflow creates a fresh SQLite file's schema on
first use without a lock, so two commands started at once on a new store would both create
it (``table experiment_tags already exists``): first use goes through :func:`schema_lock`.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .health import check_store

if TYPE_CHECKING:  # imported where a client is made: finding the store (or its absence) needs no MLflow
    from mlflow.tracking import MlflowClient

    from .sqlite_reader import SqliteReader

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


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    """Set a run's tags in one request (``log_batch``), retried while SQLite is locked."""
    from mlflow.entities import RunTag

    batch = [RunTag(k, str(v)) for k, v in tags.items()]
    if batch:
        retry_locked(lambda: client.log_batch(run_id, tags=batch))


@contextmanager
def schema_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive file lock beside a SQLite store (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_schema_ready: set[str] = set()
# MLflow 3 opens experiments without this tag in its GenAI view (Traces); classic ML opens the runs table
KIND_TAG, CLASSIC_ML = "mlflow.experimentKind", "custom_model_development"


def client(uri: str | None = None) -> MlflowClient:
    """A client of a store this process can write (:func:`check_store`: else one line saying
    why); its first use of a SQLite store in this process (which may create the schema) happens
    under :func:`schema_lock`."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    check_store(uri, write=True)
    if not uri.startswith("sqlite:///") or uri in _schema_ready:
        return MlflowClient(tracking_uri=uri)
    with schema_lock(uri):
        c = MlflowClient(tracking_uri=uri)
        retry_locked(lambda: c.search_experiments(max_results=1))
    _schema_ready.add(uri)
    return c


def store_missing(uri: str) -> bool:
    """A SQLite store whose file does not exist yet (a reader must not create it)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def read_only_client(uri: str | None = None) -> MlflowClient | SqliteReader | None:
    """A client of the project's store, or None when there is none yet: reading commands (plan,
    report, dashboard) never create a store. A SQLite store is read without loading MLflow
    (sqlite_reader.py: MLflow's client took ~2 s of these commands' start)."""
    uri = uri or tracking_uri()
    if store_missing(uri):
        return None
    check_store(uri, write=False)
    if uri.startswith("sqlite:///"):
        from .sqlite_reader import SqliteReader

        return SqliteReader(uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Experiment id for ``name``, created (with the store's schema) when absent."""
    import mlflow

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    c = client(uri)
    # the first call on a new SQLite file creates its schema; get-or-create is one step under the lock
    with schema_lock(uri):
        exp = retry_locked(lambda: c.get_experiment_by_name(name))
        if exp is None:
            try:
                return retry_locked(lambda: c.create_experiment(name, tags={KIND_TAG: CLASSIC_ML}))
            except Exception:
                exp = c.get_experiment_by_name(name)  # created concurrently through a server
                if exp is None:
                    raise
    if exp.lifecycle_stage == "deleted":
        retry_locked(lambda: c.restore_experiment(exp.experiment_id))
    if exp.tags.get(KIND_TAG) != CLASSIC_ML:
        retry_locked(lambda: c.set_experiment_tag(exp.experiment_id, KIND_TAG, CLASSIC_ML))
    return exp.experiment_id
