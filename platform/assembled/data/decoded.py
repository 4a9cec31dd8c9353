"""An image source decoded once into a uint8 array on disk, reused by every later run.

Why: decoding is most of an epoch's cost for small images (CIFAR-10 through PIL: ~3k images/s
on a core, more than a small model's step), and the shipped CIFAR-10 is two ``.tar.gz`` files.
Decoded once (50,000 images in ~20 s here), every run after that loads one 150 MB array.

Sources: an ImageFolder split (``root/<split>/<class>/<image>``) or an archive of one
(``root/*<split>*.tar.gz`` with members ``<split>/<class>/<image>``), read without extracting.
The pixels are PIL's decode of each file, exactly what the per-image loader sees.

The cache is keyed by content: an archive by the sha256 of its bytes, a folder by every file's
relative path, size and modification time, so a changed source is decoded again, never served
stale. It lives in ``ASSEMBLED_DATA_CACHE`` when set, else beside the data
(``<root>/.assembled-cache``) when that folder is writable, else ``~/.cache/assembled/decoded``.
Concurrent runs wait for one decoder (a file lock), then share its result.
"""

from __future__ import annotations

import fcntl
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .folder import IMG_EXTENSIONS, DataError
from .in_memory import InMemoryImages
from .sources import Source, cache_dir, find_source


class DecodedImages(InMemoryImages):
    """A decoded split: ``images`` (N x 3 x H x W uint8), ``targets``, ``classes``; items are
    ``(transform(image), label, index)`` like every dataset of the platform."""

    _skip_log: Path | None = None

    def __init__(self, root: str | Path, split: str, transform=None, limit_per_class: int | None = None) -> None:
        root = Path(root)
        decoded = load_or_decode(find_source(root, split), cache_dir(root))
        images, targets = decoded.images, decoded.targets
        if limit_per_class is not None:
            keep = _first_per_class(targets, limit_per_class)
            images, targets = images[keep], targets[keep]
        self.root = root
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(targets)
        self.classes = decoded.classes
        self.num_classes = len(decoded.classes)
        self.transform = transform
        self.skipped = decoded.skipped

    @property
    def skip_log(self) -> Path | None:
        return self._skip_log

    @skip_log.setter
    def skip_log(self, path: Path | None) -> None:
        """Unreadable files were left out when the split was decoded: they are named in the log
        the trainer reads, as the per-image loader names the files it skips."""
        self._skip_log = path
        if path is not None and self.skipped:
            with open(path, "a") as f:
                f.write("".join(f"{name}\n" for name in self.skipped))


def _first_per_class(targets: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n`` images of each class (files are in sorted order per class)."""
    keep = np.concatenate([np.flatnonzero(targets == c)[:n] for c in np.unique(targets)])
    return np.sort(keep)


@dataclass
class Decoded:
    images: np.ndarray  # N x 3 x H x W uint8
    targets: np.ndarray
    classes: list[str]
    skipped: list[str]  # files that could not be read (left out)


def load_or_decode(source: Source, where: Path) -> Decoded:
    """The decoded split from the cache, decoding it first (once, under a lock) when absent."""
    key = source.key()
    where.mkdir(parents=True, exist_ok=True)
    arrays, meta = where / f"{key}.npy", where / f"{key}.json"
    with open(where / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (arrays.exists() and meta.exists()):
                _decode(source, arrays, meta)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    info = json.loads(meta.read_text())
    return Decoded(np.load(arrays), np.asarray(info["targets"], dtype=np.int64), info["classes"], info["skipped"])


def _decode(source: Source, arrays: Path, meta: Path) -> None:
    named, classes = _archive_files(source) if source.archive else _folder_files(source)
    images, targets, skipped = [], [], []
    for name, label, data in named:
        img = _rgb(data)
        if img is None:
            skipped.append(name)
        else:
            images.append(img)
            targets.append(label)
    if not images:
        raise DataError(f"{source.path}: no images in the {source.split_dir} split")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(
            f"{source.path}: images of {len(shapes)} sizes (e.g. {sorted(shapes)[:2]}); the decoded cache holds "
            "one size (resize the data first, or use the per-image loader)"
        )
    stacked = np.stack(images).transpose(0, 3, 1, 2)
    tmp = arrays.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(stacked))
    meta_tmp = meta.with_suffix(".tmp")
    info = {"source": str(source.path), "classes": classes, "targets": targets, "skipped": skipped}
    meta_tmp.write_text(json.dumps(info))
    tmp.replace(arrays)
    meta_tmp.replace(meta)


def _rgb(data: bytes | Path) -> np.ndarray | None:
    """The image as H x W x 3 uint8, or None when it cannot be read (skipped, and named)."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None


def _folder_files(source: Source) -> tuple[list[tuple[str, int, Path]], list[str]]:
    classes = sorted(p.name for p in source.path.iterdir() if p.is_dir())
    files = []
    for label, cls in enumerate(classes):
        for f in sorted(p for p in (source.path / cls).iterdir() if p.suffix.lower() in IMG_EXTENSIONS):
            files.append((str(f), label, f))
    return files, classes


def _archive_files(source: Source) -> tuple[list[tuple[str, int, bytes]], list[str]]:
    """Members ``<split>/<class>/<image>``, in the sorted order a folder would give."""
    members: dict[tuple[str, str], bytes] = {}
    with tarfile.open(source.path, "r:gz") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if not m.isfile() or len(parts) != 3 or parts[0] != source.split_dir:
                continue
            if Path(parts[2]).suffix.lower() not in IMG_EXTENSIONS:
                continue
            f = tar.extractfile(m)
            if f is not None:
                members[(parts[1], parts[2])] = f.read()
    classes = sorted({cls for cls, _ in members})
    label = {c: i for i, c in enumerate(classes)}
    files = [(f"{source.path}:{source.split_dir}/{c}/{n}", label[c], members[(c, n)]) for c, n in sorted(members)]
    return files, classes
