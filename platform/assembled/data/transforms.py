"""Per-image transform presets (train / eval), on uint8 tensors or PIL images.

Train: RandomResizedCrop(scale 0.05-1, ratio 3/4-4/3) + horizontal flip (+ AutoAugment: the
official code's policy by default, torchvision's as an option), then float and normalise. Eval: resize the short side to
size/0.875 (256 for 224) and centre-crop ``size``.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from .autoaugment import OfficialAutoAugment

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EVAL_CROP_RATIO = 0.875


def _finish() -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]


def train_transform(
    size: int, autoaugment: str | None = None, min_scale: float = 0.05, normalised: bool = False
) -> v2.Compose:
    """``autoaugment``: None, ``official`` (the paper's rows) or ``torchvision``. The crops stay
    uint8 unless ``normalised``: a quarter of float32's bytes through the loader's shared memory
    and the host-device link; the trainer converts and normalises on the device
    (:func:`to_model_input`), with the same float32 operations as ``normalised=True``."""
    ops: list = [
        v2.ToImage(),
        v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    return v2.Compose(ops + _autoaugment(autoaugment) + (_finish() if normalised else []))


def _autoaugment(name: str | None) -> list:
    """``official``: the official code's ImageNet policy; ``good``: its 95 CIFAR-10 sub-policies
    (the FGVC fine-tuning's); ``torchvision``: v2.AutoAugment(IMAGENET)."""
    if not name:
        return []
    if name in ("official", "good"):
        return [OfficialAutoAugment("imagenet" if name == "official" else "good")]
    if name == "torchvision":
        return [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]
    raise ValueError(f"autoaugment must be official, good or torchvision, got {name!r}")


def eval_resize(size: int) -> int:
    """The short side before the centre crop, truncated as the official code does
    (``int(size / 0.875)``: 256 for 224, 292 for 256)."""
    return int(size / EVAL_CROP_RATIO)


def eval_geometry(size: int) -> v2.Compose:
    """Resize + centre crop only, leaving uint8: the clean image that corruptions start from."""
    return v2.Compose([v2.ToImage(), v2.Resize(eval_resize(size), antialias=True), v2.CenterCrop(size)])


def context_geometry(size: int) -> v2.Compose:
    """The resized image before its centre crop (square), uint8: what ImageNet-P's geometric
    perturbations transform before they crop (see perturbations.py)."""
    s = eval_resize(size)
    return v2.Compose([v2.ToImage(), v2.Resize(s, antialias=True), v2.CenterCrop(s)])


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] N x 3 x H x W -> the model's input normalisation."""
    mean = torch.tensor(MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def to_model_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A uint8 batch (N x 3 x H x W) -> the normalised float32 model input, on ``device``."""
    x = batch.to(device, non_blocking=True)
    if x.dtype == torch.uint8:  # torchvision's own kernels: the same numbers as the per-image transform
        x = v2.functional.normalize(v2.functional.to_dtype(x, torch.float32, scale=True), MEAN, STD)
    return x


def eval_transform(size: int, geometry: v2.Compose | None = None) -> v2.Compose:
    return v2.Compose([geometry or eval_geometry(size), *_finish()])


def reid_train_transform(size: int, autoaugment: str | None = None) -> v2.Compose:
    """The official retrieval ('reid') training preprocessing: with probability 0.5 a square
    resize to ``size`` (aspect ignored), else a square resize to int(size / 0.875) and a random
    ``size`` crop; then a flip (and AutoAugment); uint8 out, as :func:`train_transform`."""
    big = eval_resize(size)
    ops: list = [
        v2.ToImage(),
        v2.RandomChoice(
            [
                v2.Resize((size, size), antialias=True),
                v2.Compose([v2.Resize((big, big), antialias=True), v2.RandomCrop(size)]),
            ]
        ),
        v2.RandomHorizontalFlip(),
    ]
    return v2.Compose(ops + _autoaugment(autoaugment))


def reid_eval_geometry(size: int) -> v2.Compose:
    """Retrieval evaluation: a square resize to int(size / 0.875) (the official 256 for 224), no crop."""
    big = eval_resize(size)
    return v2.Compose([v2.ToImage(), v2.Resize((big, big), antialias=True)])
