"""ImageNet-P perturbation sequences (Hendrycks & Dietterich 2019) as the reference scripts make
them at difficulty 1 (hendrycks/robustness ``ImageNet-P/create_p``: ``make_imagenet_p.py`` at
224 px, ``make_tinyimagenet_p.py`` at 64, ``make_cifar_p.py`` at 32), batched in torch.

Same per-frame parameters, frame counts and frame order as the scripts; AlexNet's flip rates
were measured on those sequences, so mFR is comparable with published numbers at 224 px.
Geometric perturbations (zoom blur, translate, rotate, tilt, scale) transform a larger
*context* image (the resized image before its centre crop, as the scripts do) and then crop,
so content moves in from outside the crop.

Documented differences: the context is the square centre of the resized image (the scripts use
the whole resized image: content beyond that square along the long side comes in as black
here, e.g. translate beyond +-16 px at 224); the scripts' videos were then x264-encoded, which
``data.video`` reproduces as an option (eval ``perturbation_x264``); Tiny-ImageNet-P blurs
motion at the source resolution before resizing to 64, so its radius is given here at 64 px
(14 -> 4). Frames are quantised to 8 bits like the
scripts' PNG frames and returned as floats in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ..robustness_sets import PERTURBATIONS
from .corruptions import ops

# the generation of the sequences made here: robustness_sets.PERTURBATION_IMPLEMENTATION (bump it there)


@dataclass(frozen=True)
class ParamSet:
    """Difficulty-1 parameters of one reference script."""

    name: str
    gaussian_sigma: float
    shot_rate: float
    motion: tuple[int, float, float, float]  # frames, radius, sigma, degrees per frame (angle (i - last) * step)
    zoom_step: float
    snow: tuple[float, float, float, float, float]  # loc, scale, zoom, blur radius, blur sigma
    brightness_step: float
    translate: int  # frames 0 .. 2t, shift i - t pixels
    tilt_step: float  # degrees per frame
    scale: tuple[float, float]  # percent at frame 0, percent per frame
    video: bool = True  # the script saved x264 videos (CIFAR-10-P: uint8 arrays)
    frames: dict[str, int] = field(default_factory=dict)


IMAGENET_P = ParamSet("ImageNet-P", 0.03, 300, (31, 10, 3, 4), 0.004, (0.05, 0.3, 3, 14, 4), 0.02, 20, 1.0, (40, 2.5))
TINY_IMAGENET_P = ParamSet(
    "Tiny-ImageNet-P", 0.025, 500, (31, 4, 0.86, 5), 0.004, (0.05, 0.28, 2, 10, 2.5), 0.02, 15, 1.0, (40, 2.5)
)
CIFAR10_P = ParamSet(
    "CIFAR-10-P", 0.02, 700, (21, 6, 1.8, 9), 0.004, (0.05, 0.3, 2, 10, 2), 0.015, 7, 0.75, (70, 2), video=False
)


def param_set(size: int) -> ParamSet:
    """The reference set closest to the crop size (the same rule as the corruptions')."""
    if size >= 128:
        return IMAGENET_P
    return TINY_IMAGENET_P if size >= 48 else CIFAR10_P


def frames_of(name: str, size: int = 224) -> int:
    p = param_set(size)
    if name == "translate":
        return 2 * p.translate + 1
    if name == "motion_blur":
        return p.motion[0]
    return 31


def clean_frame(name: str, size: int = 224) -> int | None:
    """Index of the unperturbed frame (None: every frame is perturbed; tilt's middle frame too,
    since the scripts' camera at focal length f shrinks the image by f / (f + 1) at 0 degrees)."""
    p = param_set(size)
    return {
        "gaussian_noise": 0,
        "shot_noise": 0,
        "zoom_blur": 0,
        "brightness": 15,
        "translate": p.translate,
        "rotate": 15,
        "scale": round((100 - p.scale[0]) / p.scale[1]),
    }.get(name)


def _quantise(x: torch.Tensor) -> torch.Tensor:
    """8-bit frames as the scripts save them (``np.uint8(255 * x)`` truncates)."""
    return torch.floor(x.clamp(0, 1) * 255 + 1e-4) / 255


def _crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return TF.center_crop(x, list(size))


@torch.no_grad()
def sequence(images: torch.Tensor, name: str, seed: int = 0, context: torch.Tensor | None = None) -> torch.Tensor:
    """Frames x N x 3 x H x W in [0, 1]. ``images``: the clean crops (float in [0, 1]);
    ``context``: the same images before their centre crop (larger), for the geometric
    perturbations; without it the crops are their own context (as CIFAR-10-P's script)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    x = images.float()
    ctx = x if context is None else context.float()
    size = (x.shape[-2], x.shape[-1])
    p = param_set(min(size))
    g = torch.Generator().manual_seed(ops.seed_from(seed, "p", name))
    frames = _GENERATORS[name](x, ctx, size, p, g)
    return _quantise(torch.stack(frames))


def _gaussian_noise(x, ctx, size, p, g):
    return [x] + [x + torch.randn(x.shape, generator=g).to(x) * p.gaussian_sigma for _ in range(30)]


def _shot_noise(x, ctx, size, p, g):
    return [x] + [ops.scaled_poisson(x, p.shot_rate, g) for _ in range(30)]


def _motion_blur(x, ctx, size, p, g):
    frames, radius, sigma, step = p.motion
    n = x.shape[0]
    return [
        ops.motion_blur(x, radius, sigma, torch.full((n,), float((i - (frames - 1)) * step))) for i in range(frames)
    ]


def _zoom_blur(x, ctx, size, p, g):
    out, total = [x], ctx.clone()
    for i in range(1, 31):  # each zoomed frame is an 8-bit PIL image in the script
        total += torch.round(_affine(ctx, scale=1 + p.zoom_step * i).clamp(0, 1) * 255) / 255
        out.append(_crop(_quantise(total / (i + 1)), size))
    return out


def _snow(x, ctx, size, p, g):
    loc, scale, zoom, radius, sigma = p.snow
    n, _, h, w = x.shape
    layer = torch.randn(n, 1, h, w, generator=g).to(x) * scale + loc
    layer = ops.zoom(layer, zoom)
    layer = torch.where(layer < 0.5, torch.zeros_like(layer), layer)
    layer = torch.floor(layer.clamp(0, 1) * 255) / 255  # the scripts keep the layer as an 8-bit PNG
    base = 0.85 * x + 0.15 * torch.maximum(x, ops.grayscale(x) * 1.5 + 0.5)
    out = []
    for i in range(31):
        moving = ops.motion_blur(layer, radius, sigma, torch.full((n,), float(i * 4 - 150)))
        moving = torch.round(moving * 255) / 255  # ImageMagick writes 8-bit levels
        out.append(base + moving + moving.flip(-1, -2))
    return out


def _brightness(x, ctx, size, p, g):
    hsv = ops.rgb_to_hsv(x)
    out = []
    for i in range(31):
        shifted = hsv.clone()
        shifted[:, 2] = (shifted[:, 2] + (i - 15) * p.brightness_step).clamp(0, 1)
        out.append(ops.hsv_to_rgb(shifted))
    return out


def _translate(x, ctx, size, p, g):
    t = p.translate
    return [_crop(_affine(ctx, translate=(i - t, 0), nearest=True), size) for i in range(2 * t + 1)]


def _rotate(x, ctx, size, p, g):
    return [_crop(_affine(ctx, angle=float(i - 15)), size) for i in range(31)]


def _scale(x, ctx, size, p, g):
    start, step = p.scale
    return [_crop(_affine(ctx, scale=(start + step * i) / 100), size) for i in range(31)]


def _tilt(x, ctx, size, p, g):
    return [
        _crop(_perspective(ctx, tilt_matrix(ctx.shape[-1], ctx.shape[-2], p.tilt_step * (i - 15))), size)
        for i in range(31)
    ]


def _affine(x, angle: float = 0.0, translate=(0, 0), scale: float = 1.0, nearest: bool = False):
    """torchvision's affine about the image centre (the scripts' ``trn_F.affine`` on PIL images:
    bilinear, or nearest for translate; black outside)."""
    mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BILINEAR
    return TF.affine(x, angle=angle, translate=list(translate), scale=scale, shear=[0.0, 0.0], interpolation=mode)


def tilt_matrix(w: int, h: int, degrees: float) -> torch.Tensor:
    """The scripts' homography: rotate about x and y by the same angle, seen by a pinhole camera
    at focal length sqrt(w^2 + h^2) (``cv2.warpPerspective`` maps source -> destination)."""
    a = math.radians(degrees)
    f = math.sqrt(w * w + h * h)
    c, s = math.cos(a), math.sin(a)
    p1 = torch.tensor([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]], dtype=torch.float64)
    rx = torch.tensor([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], dtype=torch.float64)
    ry = torch.tensor([[c, 0, -s, 0], [0, 1, 0, 0], [s, 0, c, 0], [0, 0, 0, 1]], dtype=torch.float64)
    t = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]], dtype=torch.float64)
    p2 = torch.tensor([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]], dtype=torch.float64)
    return p2 @ t @ rx @ ry @ p1


def _perspective(x: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """``cv2.warpPerspective(x, mat)``: each destination pixel samples the source at
    ``mat^-1 (u, v, 1)`` (pixel centres at integers), bilinear, black outside."""
    n, _, h, w = x.shape
    inv = torch.linalg.inv(mat)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pts = torch.stack([u, v, torch.ones_like(u)], -1) @ inv.T
    src = pts[..., :2] / pts[..., 2:]
    grid = torch.stack([2 * src[..., 0] / (w - 1) - 1, 2 * src[..., 1] / (h - 1) - 1], -1).float()  # align_corners
    return ops.sample(x, grid.to(x.device).expand(n, h, w, 2), padding="zeros")


_GENERATORS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "brightness": _brightness,
    "translate": _translate,
    "rotate": _rotate,
    "tilt": _tilt,
    "scale": _scale,
}
