"""One entry point from a :class:`DataConfig` to datasets, whatever the source."""

from __future__ import annotations

from pathlib import Path

from .cifar import CifarPickleDataset
from .config import DataConfig
from .decoded import DecodedImages
from .folder import DataError, ImageFolderDataset, ImageListDataset
from .layouts import samples_for
from .sources import find_source
from .synthetic import SyntheticShapes
from .transforms import (
    context_geometry,
    eval_geometry,
    eval_transform,
    reid_eval_geometry,
    reid_train_transform,
    train_transform,
)


def build_dataset(cfg: DataConfig, split: str, transform=None):
    """``split`` is train or val; returns a dataset yielding ``(image, label, index)``."""
    zero_shot = cfg.split == "zero_shot"
    if cfg.kind == "synthetic":
        length = cfg.train_size if split == "train" else cfg.val_size
        return SyntheticShapes(
            cfg.num_classes, length, cfg.source_size, split, cfg.seed, transform, cfg.fine_grained, zero_shot
        )
    root = Path(cfg.path or "")
    if cfg.kind == "cifar":
        if zero_shot:
            raise DataError(f"{root}: data.split zero_shot reads image files: extract CIFAR into an ImageFolder")
        return CifarPickleDataset(root, split, transform)
    limit = cfg.limit_per_class if split == "train" else (cfg.val_limit_per_class or cfg.limit_per_class)
    if cfg.kind == "folder" and not zero_shot:
        source = find_source(root, split)
        if cfg.cache or source.archive or cfg.pipeline == "device":
            return DecodedImages(root, split, transform, limit)
        return ImageFolderDataset(source.path, transform, limit)
    samples, classes = samples_for(cfg.kind, root, split, zero_shot, limit)
    return ImageListDataset(samples, classes, root, transform)


def train_dataset(cfg: DataConfig):
    """The training images with their per-image transform (the loader path), or untransformed
    uint8 in memory for the device path (device_batches.py augments whole batches)."""
    if cfg.pipeline == "device":
        return build_dataset(cfg, "train")
    aa = cfg.autoaugment_policy if cfg.autoaugment else None
    if cfg.preprocessing == "reid":
        return build_dataset(cfg, "train", reid_train_transform(cfg.image_size, aa))
    return build_dataset(cfg, "train", train_transform(cfg.image_size, aa, cfg.min_crop_scale))


def val_dataset(cfg: DataConfig, normalised: bool = True, raw: bool = False):
    """Evaluation images: normalised model inputs, or uint8 clean crops (for corruptions), or
    (``raw``) the untransformed in-memory images the device path crops in batches."""
    if raw:
        return build_dataset(cfg, "val")
    if cfg.preprocessing == "reid":
        geometry = reid_eval_geometry(cfg.eval_crop)
        return build_dataset(cfg, "val", eval_transform(cfg.eval_crop, geometry) if normalised else geometry)
    tf = eval_transform(cfg.eval_crop) if normalised else eval_geometry(cfg.eval_crop)
    return build_dataset(cfg, "val", tf)


def val_context(cfg: DataConfig):
    """Evaluation images before their centre crop (uint8), for ImageNet-P's sequences."""
    return build_dataset(cfg, "val", context_geometry(cfg.eval_crop))


def teacher_view(cfg: DataConfig, size: int | None = None):
    """The student's training images as a teacher sees them offline: eval preprocessing at the
    teacher's crop ``size`` (resized from the same source images), no augmentation."""
    return build_dataset(cfg, "train", eval_transform(size or cfg.eval_crop))


__all__ = ["DataError", "build_dataset", "teacher_view", "train_dataset", "val_context", "val_dataset"]
