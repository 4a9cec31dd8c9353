"""Real images from disk: ImageFolder layouts (ImageNet, Imagenette, Food-101 after its split
script, the shared CIFAR-10 JPEGs) with errors a user can act on.

A missing root or split, an empty class folder, or no images at all raise
:class:`DataError` naming the path before training starts. An unreadable image is replaced by
the next readable one, with that image's own label and index (a substitute never carries the
bad file's label), so one bad file never kills a worker. Skipped files are appended to
``skip_log`` when one is set: DataLoader workers are other processes, and a file is the one
record they and the trainer share.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

# torchvision.datasets.folder.IMG_EXTENSIONS, spelled out (a test keeps them equal): importing
# torchvision for a tuple put torch's start-up into every command that checks a data folder
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """Bad data location or content, with the path at fault in the message."""


def find_split(root: Path, split: str) -> Path:
    """``root/<split>`` for the usual names (train; val / validation / test for evaluation)."""
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    names = ["train"] if split == "train" else ["val", "validation", "test"]
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no {' / '.join(names)} folder for the {split} split")


class ImageListDataset:
    """Images named by a list of ``(path, label)``; returns ``(transform(image), label, index)``.

    The one loader of every on-disk source (ImageFolders and the published dataset layouts of
    layouts.py), so every source skips unreadable files the same way."""

    def __init__(self, samples: list[tuple[Path, int]], classes: list[str], root: Path, transform=None) -> None:
        self.root = Path(root)
        self.samples = samples
        self.classes = classes
        self.targets = [label for _, label in samples]
        self.num_classes = len(classes)
        self.transform = transform
        self.skipped: list[str] = []
        self.skip_log: Path | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> tuple[Image.Image, int]:
        """The image at ``i`` and ``i``, or the next readable one and its index (``i`` skipped)."""
        for offset in range(len(self.samples)):
            j = (i + offset) % len(self.samples)
            path, _ = self.samples[j]
            try:
                with Image.open(path) as img:
                    return img.convert("RGB"), j
            except (OSError, UnidentifiedImageError):
                self._skip(path)
        raise DataError(f"{self.root}: no readable image")

    def _skip(self, path: Path) -> None:
        self.skipped.append(str(path))
        if self.skip_log is not None:
            with open(self.skip_log, "a") as f:  # one short line per write: appends do not interleave
                f.write(f"{path}\n")

    def __getitem__(self, i: int):
        img, j = self.load(i)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[j], j


def folder_samples(root: Path, limit_per_class: int | None = None) -> tuple[list[tuple[Path, int]], list[str]]:
    """``root/<class>/<image>`` as (path, label) pairs and the sorted class names."""
    if not root.is_dir():
        raise DataError(f"image folder does not exist: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<image>)")
    samples: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise DataError(f"{root / cls}: empty class folder (no images)")
        samples += [(f, label) for f in files[:limit_per_class]]
    return samples, classes


class ImageFolderDataset(ImageListDataset):
    """``root/<class>/<image>``; returns ``(transform(image), label, index)``."""

    def __init__(self, root: str | Path, transform=None, limit_per_class: int | None = None) -> None:
        samples, classes = folder_samples(Path(root), limit_per_class)
        super().__init__(samples, classes, Path(root), transform)


def skipped_files(log: Path) -> list[str]:
    """The distinct files a skip log names (every epoch meets the same bad file again)."""
    return sorted(set(log.read_text().splitlines())) if log.exists() else []
