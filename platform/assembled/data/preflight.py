"""Check a data source once, before Ray starts or any run is created: a missing path, an
empty folder, a folder without ``val/`` or ``test/``, or a train split smaller than one batch
is one error naming the path, instead of a Ray start and one FAILED run per row."""

from __future__ import annotations

from pathlib import Path

from .config import DataConfig
from .folder import DataError, ImageFolderDataset
from .layouts import samples_for
from .sources import cache_dir, decoded_count, find_source


def _check_cifar(root: Path) -> int:
    from .cifar import LAYOUTS, detect_layout  # torch behind them: only for this kind

    if not root.is_dir():
        raise DataError(f"CIFAR folder does not exist: {root}")
    files = LAYOUTS[detect_layout(root)][0]
    for name in files["train"] + files["test"]:
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing CIFAR batch file")
    return 50_000


def _check_folder(cfg: DataConfig, root: Path, val_limit: int | None, decode: bool) -> tuple[int | None, Path]:
    """An ImageFolder split pair (or archives of them): its training images and where they are."""
    train_src, val_src = find_source(root, "train"), find_source(root, "val")
    if not (cfg.cache or cfg.pipeline == "device" or train_src.archive or val_src.archive):
        train = ImageFolderDataset(train_src.path, limit_per_class=cfg.limit_per_class)
        ImageFolderDataset(val_src.path, limit_per_class=val_limit)
        return len(train), train.root
    if not decode:  # its size only when decoded already (a per-class cut of it: unknown before)
        n = decoded_count(train_src, cache_dir(root))
        return (n if cfg.limit_per_class is None else None), train_src.path
    from .decoded import DecodedImages  # torch behind it: only for folders that are decoded

    n = len(DecodedImages(root, "train", limit_per_class=cfg.limit_per_class))  # decoded here, once
    DecodedImages(root, "val", limit_per_class=val_limit)
    return n, train_src.path


def check_source(cfg: DataConfig, batch_size: int, decode: bool = True) -> int | None:
    """The number of training images (an upper bound for CIFAR); raises :class:`DataError`.
    ``decode=False`` (``assembled plan``: it runs nothing) finds the splits of a folder source
    without decoding them or importing torch; their size is then known only once decoded
    (``None`` before: the batch check waits for the run)."""
    if cfg.kind == "synthetic":
        return cfg.train_size
    root = Path(cfg.path or "")
    if cfg.kind == "cifar":
        return _check_cifar(root)
    val_limit = cfg.val_limit_per_class or cfg.limit_per_class
    if cfg.kind == "folder" and cfg.split == "standard":
        n, where = _check_folder(cfg, root, val_limit, decode)
        if n is None:
            return None
    else:  # a published layout, or a zero-shot class split
        zero_shot = cfg.split == "zero_shot"
        n = len(samples_for(cfg.kind, root, "train", zero_shot, cfg.limit_per_class)[0])
        samples_for(cfg.kind, root, "val", zero_shot, val_limit)
        where = root
    if n < batch_size:
        raise DataError(f"{where}: the train split has {n} images, fewer than one batch of {batch_size}")
    return n
