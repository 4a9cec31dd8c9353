"""The shared trainer: loop, losses, optimiser, schedules, checkpoints, teacher logits.

Exports load on first use: a TrainConfig validates without importing torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DataConfig": ".config",
    "OptimConfig": ".config",
    "RegConfig": ".config",
    "TrainConfig": ".config",
    "flatten": ".config",
    "Trainer": ".trainer",
    "TrainingDiverged": ".trainer",
    "TrainResult": ".trainer",
    "evaluate_top1": "..evaluation.top1",
    "resolve_device": ".trainer",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
