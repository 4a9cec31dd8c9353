"""The shared trainer: loop, losses, optimiser, schedules, checkpoints, teacher logits."""

from .config import DataConfig, OptimConfig, RegConfig, TrainConfig, flatten
from .trainer import Trainer, TrainingDiverged, TrainResult, evaluate_top1, resolve_device

__all__ = [
    "DataConfig",
    "OptimConfig",
    "RegConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "evaluate_top1",
    "flatten",
    "resolve_device",
]
