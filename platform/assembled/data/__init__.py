"""Datasets, transforms, mixup; corruptions and perturbations for robustness evaluation.

Exports load on first use: a DataConfig validates without importing torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DataConfig": ".config",
    "DataError": ".folder",
    "build_dataset": ".datasets",
    "teacher_view": ".datasets",
    "train_dataset": ".datasets",
    "val_dataset": ".datasets",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
