"""Everything that talks to MLflow.

Exports load on first use (PEP 562): ``assembled --help`` builds every parser without
importing MLflow or torch.
"""

from ..lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)
