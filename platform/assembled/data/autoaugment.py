"""AutoAugment as the official Assemble-ResNet code applies it (its port of the TF-TPU
EfficientNet policy; spec section 2.5), on uint8 C x H x W tensors with torchvision's
functional ops.

torchvision's ``AutoAugment(IMAGENET)`` has the same 25 sub-policies but other magnitudes:
posterize keeps 4-8 bits there and ``int(4 L / 10)`` bits here, solarize thresholds at
``256 L / 10`` here, Color / Contrast / Brightness / Sharpness use the fixed factor
``0.1 + 1.8 L / 10`` here (no random sign), rotation is ``30 L / 10`` degrees, translation
``250 L / 10`` pixels, and empty areas are filled with grey 128. Both stay selectable
(``DataConfig.autoaugment_policy``); the paper's rows use this one.

Quirks kept from the official code: Contrast blends towards the constant ``H * W / 256``
(the TF port's histogram-sum bug; 196 at 224 px), not the mean grey. One known difference:
torchvision's Sharpness rounds the smoothed image where TF truncates it (at most one level).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

FILL = 128
MAX_LEVEL = 10
POLICY_FILE = Path(__file__).with_name("autoaugment_policies.json")  # verbatim from clovaai/assembled-cnn


@cache
def policy(name: str = "imagenet") -> list[list[tuple[str, float, int]]]:
    """Sub-policies: ``imagenet`` (25, the paper's ImageNet rows) or ``good`` (95 CIFAR-10
    policies, the official FGVC fine-tuning)."""
    data = json.loads(POLICY_FILE.read_text())
    if name not in data or name == "note":
        raise ValueError(f"unknown AutoAugment policy {name!r}; have imagenet, good")
    return [[(op, float(p), int(level)) for op, p, level in sub] for sub in data[name]]


def magnitude(op: str, level: int) -> float:
    """The official magnitude of ``op`` at ``level`` (0-10), before any random sign."""
    f = level / MAX_LEVEL
    rules = {
        "Rotate": 30 * f,
        "ShearX": 0.3 * f,
        "ShearY": 0.3 * f,
        "TranslateX": 250 * f,
        "TranslateY": 250 * f,
        "Color": 1.8 * f + 0.1,
        "Contrast": 1.8 * f + 0.1,
        "Brightness": 1.8 * f + 0.1,
        "Sharpness": 1.8 * f + 0.1,
        "Posterize": int(4 * f),
        "Solarize": int(256 * f),
        "SolarizeAdd": int(110 * f),
        "Cutout": int(100 * f),
    }
    return float(rules.get(op, 0.0))


SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}


def _blend(img: torch.Tensor, degenerate: torch.Tensor, factor: float) -> torch.Tensor:
    """TF's blend: truncating cast, clipped to [0, 255] (a convex blend needs no clip)."""
    out = degenerate.float() + factor * (img.float() - degenerate.float())
    return out.clamp(0, 255).to(torch.uint8)


def _contrast(img: torch.Tensor, factor: float) -> torch.Tensor:
    h, w = img.shape[-2:]
    grey = torch.full_like(img, min(255, int(h * w / 256)))
    return _blend(img, grey, factor)


def _cutout(img: torch.Tensor, half: int, gen: torch.Generator | None) -> torch.Tensor:
    h, w = img.shape[-2:]
    cy = int(torch.randint(h, (1,), generator=gen))
    cx = int(torch.randint(w, (1,), generator=gen))
    out = img.clone()
    out[..., max(0, cy - half) : min(h, cy + half), max(0, cx - half) : min(w, cx + half)] = FILL
    return out


def apply_op(img: torch.Tensor, op: str, level: int, sign: float = 1.0, gen: torch.Generator | None = None):
    """One operation at an official level on a uint8 C x H x W tensor."""
    m = magnitude(op, level) * (sign if op in SIGNED else 1.0)
    fill = [float(FILL)] * img.shape[-3]
    nearest = InterpolationMode.NEAREST
    if op == "Rotate":
        return F.rotate(img, m, interpolation=nearest, fill=fill)
    if op in ("ShearX", "ShearY"):
        shear = [math.degrees(math.atan(m)), 0.0] if op == "ShearX" else [0.0, math.degrees(math.atan(m))]
        return F.affine(
            img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=nearest, fill=fill, center=[0, 0]
        )
    if op in ("TranslateX", "TranslateY"):
        shift = [int(m), 0] if op == "TranslateX" else [0, int(m)]
        return F.affine(img, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=nearest, fill=fill)
    if op == "Color":
        return _blend(img, F.rgb_to_grayscale(img, num_output_channels=img.shape[-3]), m)
    if op == "Contrast":
        return _contrast(img, m)
    if op == "Brightness":
        return _blend(img, torch.zeros_like(img), m)
    if op == "Sharpness":
        return F.adjust_sharpness(img, m)
    if op == "Posterize":
        return F.posterize(img, int(m))
    if op == "Solarize":
        return img if m >= 256 else F.solarize(img, m)
    if op == "SolarizeAdd":
        return torch.where(img < 128, (img.int() + int(m)).clamp(0, 255).to(torch.uint8), img)
    if op == "Cutout":
        return _cutout(img, int(m), gen)
    if op == "AutoContrast":
        return F.autocontrast(img)
    if op == "Equalize":
        return F.equalize(img)
    if op == "Invert":
        return F.invert(img)
    raise ValueError(f"unknown AutoAugment op {op!r}")


class OfficialAutoAugment(torch.nn.Module):
    """Per image: one sub-policy chosen uniformly, each of its two ops applied with its
    probability (signed ops get a random sign). Draws from torch's global generator, like
    torchvision's transforms, so seeded runs and DataLoader workers stay reproducible."""

    def __init__(self, name: str = "imagenet") -> None:
        super().__init__()
        self.name = name
        self.subpolicies = policy(name)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8:
            raise TypeError("OfficialAutoAugment expects a uint8 tensor image (apply after ToImage)")
        sub = self.subpolicies[int(torch.randint(len(self.subpolicies), (1,)))]
        for op, prob, level in sub:
            if float(torch.rand(())) < prob:
                sign = -1.0 if float(torch.rand(())) < 0.5 else 1.0
                img = apply_op(img, op, level, sign)
        return img

    def extra_repr(self) -> str:
        return f"policy={self.name!r} ({len(self.subpolicies)} sub-policies, official magnitudes)"


def autoaugment_batch(images: torch.Tensor, name: str, gen: torch.Generator) -> torch.Tensor:
    """The same policy on a uint8 batch (N x C x H x W, any device): per sample a sub-policy,
    whether each op applies and its sign, all drawn on the CPU generator ``gen`` (so a seed
    picks the same policies on every device); each op then runs once on the samples that take
    it, with the same functional ops as :class:`OfficialAutoAugment`."""
    subs = policy(name)
    n = images.shape[0]
    choice = torch.randint(len(subs), (n,), generator=gen)
    applies = torch.rand(n, 2, generator=gen)
    negative = torch.rand(n, 2, generator=gen) < 0.5
    out = images.clone()
    for k in (0, 1):  # each sample's first op, then its second
        for s, sub in enumerate(subs):
            op, prob, level = sub[k]
            takes = (choice == s) & (applies[:, k] < prob)
            signs = (
                ((-1.0, takes & negative[:, k]), (1.0, takes & ~negative[:, k])) if op in SIGNED else ((1.0, takes),)
            )
            for sign, mask in signs:
                idx = mask.nonzero().squeeze(1)  # on the CPU: choosing samples costs no device sync
                if len(idx) == 0:
                    continue
                rows = idx.to(out.device, non_blocking=True)
                if op == "Cutout":
                    out[rows] = _cutout_batch(out[rows], int(magnitude(op, level)), gen)
                else:
                    out[rows] = apply_op(out[rows], op, level, sign)
    return out


def _cutout_batch(img: torch.Tensor, half: int, gen: torch.Generator) -> torch.Tensor:
    """Cutout with each sample's own centre (grey square of side up to 2 * half)."""
    n, _, h, w = img.shape
    cy = torch.randint(h, (n, 1, 1), generator=gen).to(img.device)
    cx = torch.randint(w, (n, 1, 1), generator=gen).to(img.device)
    ys = torch.arange(h, device=img.device).view(1, -1, 1)
    xs = torch.arange(w, device=img.device).view(1, 1, -1)
    inside = (ys >= cy - half) & (ys < cy + half) & (xs >= cx - half) & (xs < cx + half)
    return torch.where(inside.unsqueeze(1), torch.full_like(img, FILL), img)
