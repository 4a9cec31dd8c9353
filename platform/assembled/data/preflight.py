"""Check a data source once, before Ray starts or any run is created: a missing path, an
empty folder, a folder without ``val/`` or ``test/``, or a train split smaller than one batch
is one error naming the path, instead of a Ray start and one FAILED run per row."""

from __future__ import annotations

from pathlib import Path

from .cifar import LAYOUTS, detect_layout
from .config import DataConfig
from .folder import DataError, ImageFolderDataset, find_split


def check_source(cfg: DataConfig, batch_size: int) -> int:
    """The number of training images (an upper bound for CIFAR); raises :class:`DataError`."""
    if cfg.kind == "synthetic":
        return cfg.train_size
    root = Path(cfg.path or "")
    if cfg.kind == "cifar":
        if not root.is_dir():
            raise DataError(f"CIFAR folder does not exist: {root}")
        files = LAYOUTS[detect_layout(root)][0]
        for name in files["train"] + files["test"]:
            if not (root / name).exists():
                raise DataError(f"{root / name}: missing CIFAR batch file")
        return 50_000
    train = ImageFolderDataset(find_split(root, "train"), limit_per_class=cfg.limit_per_class)
    ImageFolderDataset(find_split(root, "val"), limit_per_class=cfg.val_limit_per_class or cfg.limit_per_class)
    if len(train) < batch_size:
        raise DataError(f"{train.root}: the train split has {len(train)} images, fewer than one batch of {batch_size}")
    return len(train)
