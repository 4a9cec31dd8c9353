"""Published dataset layouts on a local disk, as ``(path, label)`` lists per split.

The five FGVC sets of the paper's Tables 10-11 are read through torchvision's own dataset
classes (``download=False``: they check the layout and parse the annotation files; Flowers102
also checks its ``.mat`` files' md5); the retrieval sets torchvision does not ship (CUB-200-2011,
Stanford Online Products) are parsed here from their published index files. A ``path`` may name
the dataset's own folder (``.../food-101``) or the folder that holds it.

Splits: ``standard`` is the published train/test split (the test split is what the paper
evaluates on). ``zero_shot`` (image retrieval, Song et al. 2016) pools every image, trains on the
first half of the classes in their published order and keeps the second half as query and
gallery: CUB 100/100, Cars196 98/98, an ImageFolder its sorted class names split in two. SOP's
published files are already the zero-shot split.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .folder import DataError, find_split, folder_samples

Samples = list[tuple[Path, int]]
Split = tuple[Samples, list[str]]

# kind -> (torchvision class name, its folder under root, train split, test split)
TORCHVISION = {
    "food101": ("Food101", "food-101", "train", "test"),
    "stanford_cars": ("StanfordCars", "stanford_cars", "train", "test"),
    "flowers102": ("Flowers102", "flowers-102", "train+val", "test"),
    "fgvc_aircraft": ("FGVCAircraft", "fgvc-aircraft-2013b", "trainval", "test"),
    "oxford_pets": ("OxfordIIITPet", "oxford-iiit-pet", "trainval", "test"),
}


def _torchvision_split(kind: str, root: Path, split: str) -> Split:
    import torchvision.datasets as tvd

    cls_name, folder, *_ = TORCHVISION[kind]
    base = root.parent if root.name == folder else root
    samples: Samples = []
    classes: list[str] = []
    for part in split.split("+"):
        try:
            ds = getattr(tvd, cls_name)(str(base), split=part, download=False)
        except (RuntimeError, FileNotFoundError, OSError) as e:
            raise DataError(
                f"{root}: not a {cls_name} layout ({folder}/...; see torchvision.datasets.{cls_name}): {e}"
            ) from None
        samples += _pairs(kind, ds)
        classes = list(getattr(ds, "classes", [])) or [f"class_{i:03d}" for i in range(max(ds._labels) + 1)]
    return samples, classes


def _pairs(kind: str, ds) -> Samples:
    """torchvision keeps each dataset's (path, label) lists under its own private names."""
    if kind == "stanford_cars":
        return [(Path(p), int(y)) for p, y in ds._samples]
    files = ds._images if kind == "oxford_pets" else ds._image_files
    return [(Path(p), int(y)) for p, y in zip(files, ds._labels, strict=True)]


def _lines(path: Path) -> list[list[str]]:
    if not path.exists():
        raise DataError(f"{path}: missing index file")
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]


def _cub(root: Path, split: str) -> Split:
    base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    images = {i: base / "images" / rel for i, rel in _lines(base / "images.txt")}
    labels = {i: int(c) - 1 for i, c in _lines(base / "image_class_labels.txt")}
    classes = [name for _, name in sorted(_lines(base / "classes.txt"), key=lambda r: int(r[0]))]
    if split == "all":
        return [(images[i], labels[i]) for i in images], classes
    train = {i for i, flag in _lines(base / "train_test_split.txt") if flag == "1"}
    keep = [i for i in images if (i in train) == (split == "train")]
    return [(images[i], labels[i]) for i in keep], classes


def _sop(root: Path, split: str) -> Split:
    base = root / "Stanford_Online_Products" if (root / "Stanford_Online_Products").is_dir() else root
    rows = _lines(base / ("Ebay_train.txt" if split == "train" else "Ebay_test.txt"))[1:]  # a header line
    ids = sorted({int(r[1]) for r in rows})
    label = {c: i for i, c in enumerate(ids)}
    return [(base / r[3], label[int(r[1])]) for r in rows], [str(c) for c in ids]


def _folder(root: Path, split: str) -> Split:
    if split == "all":
        train, classes = folder_samples(find_split(root, "train"))
        val, val_classes = folder_samples(find_split(root, "val"))
        if val_classes != classes:
            raise DataError(f"{root}: train/ and val/ have different class folders")
        return train + val, classes
    return folder_samples(find_split(root, split))


def published_split(kind: str, root: Path, split: str) -> Split:
    """``split``: train, val (the published test split) or all (both, for zero-shot)."""
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if kind == "folder":
        return _folder(root, split)
    if kind == "cub200":
        return _cub(root, split)
    if kind in TORCHVISION or kind == "cars196":
        tv_kind = "stanford_cars" if kind == "cars196" else kind
        _, _, train, test = TORCHVISION[tv_kind]
        part = {"train": train, "val": test, "all": f"{train}+{test}"}[split]
        return _torchvision_split(tv_kind, root, part)
    raise DataError(f"{root}: no reader for data.kind {kind!r}")


def zero_shot(samples: Samples, classes: list[str], split: str) -> Split:
    """The first half of the classes (train) or the second half (val), labels from 0."""
    half = len(classes) // 2
    lo, hi = (0, half) if split == "train" else (half, len(classes))
    return [(p, y - lo) for p, y in samples if lo <= y < hi], classes[lo:hi]


def limit_per_class(samples: Samples, limit: int | None) -> Samples:
    if limit is None:
        return samples
    seen: dict[int, int] = {}
    out = []
    for p, y in samples:
        if seen.get(y, 0) < limit:
            out.append((p, y))
            seen[y] = seen.get(y, 0) + 1
    return out


def samples_for(kind: str, root: Path, split: str, zero_shot_split: bool, limit: int | None) -> Split:
    """What a split of a dataset trains or evaluates on."""
    if kind == "sop":  # published zero-shot files
        samples, classes = _sop(root, split)
    elif zero_shot_split:
        samples, classes = zero_shot(*published_split(kind, root, "all"), split)
    else:
        samples, classes = published_split(kind, root, split)
    samples = limit_per_class(samples, limit)
    if not samples:
        raise DataError(f"{root}: the {split} split of {kind} has no images")
    return samples, classes


# the file that tells each published layout apart (see detect_kind)
MARKERS: dict[str, Callable[[Path], bool]] = {
    "food101": lambda r: (r / "meta" / "train.json").exists() or (r / "food-101" / "meta").is_dir(),
    "stanford_cars": lambda r: (r / "devkit" / "cars_meta.mat").exists() or (r / "stanford_cars").is_dir(),
    "flowers102": lambda r: (r / "imagelabels.mat").exists() or (r / "flowers-102").is_dir(),
    "fgvc_aircraft": lambda r: (r / "data" / "variants.txt").exists() or (r / "fgvc-aircraft-2013b").is_dir(),
    "oxford_pets": lambda r: (r / "annotations" / "trainval.txt").exists() or (r / "oxford-iiit-pet").is_dir(),
    "cub200": lambda r: (r / "image_class_labels.txt").exists() or (r / "CUB_200_2011").is_dir(),
    "sop": lambda r: (r / "Ebay_train.txt").exists() or (r / "Stanford_Online_Products").is_dir(),
}


def detect_kind(root: Path) -> str:
    """The published layout at ``root`` (``folder`` when it is none of them)."""
    for kind, marker in MARKERS.items():
        if marker(root):
            return kind
    return "folder"
