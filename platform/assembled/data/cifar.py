"""CIFAR-10/100 from a local folder in the standard python-pickle layout.

torchvision's classes insist on checksums and downloads; this reader takes the extracted
``cifar-10-batches-py`` (data_batch_1..5, test_batch) or ``cifar-100-python`` (train, test)
folder as it is, and says which file is missing when one is.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .folder import DataError
from .in_memory import InMemoryImages

LAYOUTS = {
    "cifar10": (
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        b"labels",
        "batches.meta",
        b"label_names",
    ),
    "cifar100": ({"train": ["train"], "test": ["test"]}, b"fine_labels", "meta", b"fine_label_names"),
}


def detect_layout(root: Path) -> str:
    if (root / "data_batch_1").exists() or (root / "test_batch").exists():
        return "cifar10"
    if (root / "train").is_file() or (root / "test").is_file():
        return "cifar100"
    raise DataError(f"{root}: not a CIFAR python-pickle folder (expected data_batch_1..5/test_batch or train/test)")


class CifarPickleDataset(InMemoryImages):
    """Returns ``(transform(uint8 3x32x32 tensor), label, index)``."""

    def __init__(self, root: str | Path, split: str = "train", transform=None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"CIFAR folder does not exist: {root}")
        kind = detect_layout(root)
        files, label_key, meta_file, names_key = LAYOUTS[kind]
        images, labels = [], []
        for name in files["train" if split == "train" else "test"]:
            path = root / name
            if not path.exists():
                raise DataError(f"{path}: missing CIFAR batch file")
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels += list(batch[label_key])
            except (KeyError, pickle.UnpicklingError, ValueError, EOFError) as e:
                raise DataError(f"{path}: unreadable CIFAR batch ({e})") from e
        self.images = torch.from_numpy(np.concatenate(images))
        self.targets = labels
        meta = root / meta_file
        if meta.exists():
            with open(meta, "rb") as f:
                self.classes = [n.decode() for n in pickle.load(f, encoding="bytes")[names_key]]
        else:
            self.classes = [str(i) for i in range(max(labels) + 1)]
        self.num_classes = len(self.classes)
        self.transform = transform
