"""Datasets, transforms, mixup; corruptions and perturbations for robustness evaluation."""

from .config import DataConfig
from .datasets import DataError, build_dataset, teacher_view, train_dataset, val_dataset

__all__ = ["DataConfig", "DataError", "build_dataset", "teacher_view", "train_dataset", "val_dataset"]
