"""Everything that talks to MLflow.

Exports load on first use (PEP 562): ``assembled --help`` builds every parser without
importing MLflow or torch.
"""

from importlib import import_module

_EXPORTS = {
    "client": ".store",
    "ensure_experiment": ".store",
    "retry_locked": ".store",
    "tracking_uri": ".store",
    "TrackedRun": ".tracked_run",
    "finish_run": ".tracked_run",
    "open_run": ".tracked_run",
    "train_tracked": ".tracked_run",
    "evaluate_tracked": ".tracked_run",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
