"""Where a split's images are (a folder or an archive of one), the key its decoded cache is
stored under, and where that cache lives: torch-free, so that ``assembled plan`` checks a data
source without importing torch or decoding it (decoded.py decodes)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .folder import IMG_EXTENSIONS, DataError

CACHE_ENV = "ASSEMBLED_DATA_CACHE"
FORMAT = 1  # bump when the decoded layout changes: old caches are then ignored
SPLIT_NAMES = {"train": ("train",), "val": ("val", "validation", "test")}


@dataclass(frozen=True)
class Source:
    """Where a split's images are: a folder of class folders, or an archive holding one."""

    path: Path
    split_dir: str  # the split folder's name (inside the archive for an archive)
    archive: bool

    def key(self) -> str:
        h = hashlib.sha256(f"format {FORMAT}|{self.split_dir}|".encode())
        if self.archive:
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            for p in sorted(self.path.rglob("*")):
                if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS:
                    st = p.stat()
                    h.update(f"{p.relative_to(self.path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:24]


def find_source(root: Path, split: str) -> Source:
    """The split's folder (``train``; ``val`` / ``validation`` / ``test``), else an archive of it."""
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    names = SPLIT_NAMES["train" if split == "train" else "val"]
    for name in names:
        if (root / name).is_dir():
            return Source(root / name, name, False)
    for name in names:
        archives = sorted(p for p in root.glob("*.tar.gz") if _split_of(p.name) == name)
        if archives:
            return Source(archives[0], name, True)
    raise DataError(f"{root}: no {' / '.join(names)} folder (or *{names[0]}.tar.gz archive) for the {split} split")


def _split_of(filename: str) -> str:
    """``cifar10-train.tar.gz`` -> ``train``: the last dash- or dot-separated word of the stem."""
    stem = filename[: -len(".tar.gz")]
    return stem.replace(".", "-").replace("_", "-").rsplit("-", 1)[-1]


def cache_dir(root: Path) -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    # beside the data only where its owner lets anyone write: a read-only share stays untouched
    if root.is_dir() and os.access(root, os.W_OK) and root.stat().st_mode & stat.S_IWUSR:
        return root / ".assembled-cache"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "assembled" / "decoded"


def decoded_count(source: Source, where: Path) -> int | None:
    """The number of images of the split's decoded cache, when it has been decoded (else None)."""
    meta = where / f"{source.key()}.json"
    if not meta.exists():
        return None
    return len(json.loads(meta.read_text())["targets"])
