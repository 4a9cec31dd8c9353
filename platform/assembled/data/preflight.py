"""Check a data source once, before Ray starts or any run is created: a missing path, an
empty folder, a folder without ``val/`` or ``test/``, or a train split smaller than one batch
is one error naming the path, instead of a Ray start and one FAILED run per row."""

from __future__ import annotations

from pathlib import Path

from .config import DataConfig
from .folder import DataError, ImageFolderDataset
from .layouts import samples_for


def check_source(cfg: DataConfig, batch_size: int) -> int:
    """The number of training images (an upper bound for CIFAR); raises :class:`DataError`."""
    if cfg.kind == "synthetic":
        return cfg.train_size
    root = Path(cfg.path or "")
    if cfg.kind == "cifar":
        from .cifar import LAYOUTS, detect_layout  # torch behind them: only for this kind

        if not root.is_dir():
            raise DataError(f"CIFAR folder does not exist: {root}")
        files = LAYOUTS[detect_layout(root)][0]
        for name in files["train"] + files["test"]:
            if not (root / name).exists():
                raise DataError(f"{root / name}: missing CIFAR batch file")
        return 50_000
    val_limit = cfg.val_limit_per_class or cfg.limit_per_class
    if cfg.kind == "folder" and cfg.split == "standard":
        from .decoded import DecodedImages, find_source  # torch behind them: only for folders

        train_src, val_src = find_source(root, "train"), find_source(root, "val")
        # decoded here, once, before any trial starts
        if cfg.cache or cfg.pipeline == "device" or train_src.archive or val_src.archive:
            n, where = len(DecodedImages(root, "train", limit_per_class=cfg.limit_per_class)), train_src.path
            DecodedImages(root, "val", limit_per_class=val_limit)
        else:
            train = ImageFolderDataset(train_src.path, limit_per_class=cfg.limit_per_class)
            ImageFolderDataset(val_src.path, limit_per_class=val_limit)
            n, where = len(train), train.root
    else:  # a published layout, or a zero-shot class split
        zero_shot = cfg.split == "zero_shot"
        n = len(samples_for(cfg.kind, root, "train", zero_shot, cfg.limit_per_class)[0])
        samples_for(cfg.kind, root, "val", zero_shot, val_limit)
        where = root
    if n < batch_size:
        raise DataError(f"{where}: the train split has {n} images, fewer than one batch of {batch_size}")
    return n
