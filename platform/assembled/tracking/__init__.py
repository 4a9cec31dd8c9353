"""Everything that talks to MLflow."""

from .store import client, ensure_experiment, retry_locked, tracking_uri
from .tracked_run import TrackedRun, finish_run, open_run, train_tracked

__all__ = [
    "TrackedRun",
    "client",
    "ensure_experiment",
    "finish_run",
    "open_run",
    "retry_locked",
    "tracking_uri",
    "train_tracked",
]
