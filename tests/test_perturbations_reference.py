"""ImageNet-P's sequences against the reference scripts' own code path (make_imagenet_p.py at
difficulty 1): torchvision's ``affine`` on PIL images, numpy noise, ImageMagick's motion-blur
loop and OpenCV's perspective warp written out in numpy. Per perturbation, the mean per-step
change (noise: against frame 0) of our batched frames must be within 10% of the reference's,
on natural images (the shared CIFAR-10 photographs, upsampled to 256 px) or, where those are
absent, on smooth synthetic images."""

from __future__ import annotations

import math
import tarfile

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TVF
from PIL import Image

from assembled.data.perturbations import IMAGENET_P, PERTURBATIONS, sequence

from .conftest import SHARED_CIFAR
from .hendrycks_reference import imagemagick_motion

CROP, CONTEXT = 224, 256


def _natural_images(n: int = 3) -> list[Image.Image]:
    tar = SHARED_CIFAR / "cifar10-test.tar.gz"
    if tar.exists():
        with tarfile.open(tar) as t:
            members = [m for m in t.getmembers() if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png"))]
            picked = members[:: max(1, len(members) // n)][:n]
            return [
                Image.open(t.extractfile(m)).convert("RGB").resize((CONTEXT, CONTEXT), Image.BILINEAR) for m in picked
            ]
    g = np.random.default_rng(0)
    yy, xx = np.mgrid[0:CONTEXT, 0:CONTEXT] / CONTEXT
    out = []
    for _ in range(n):
        f = g.uniform(1, 4, 3)
        img = np.stack([0.5 + 0.4 * np.sin(2 * math.pi * (f[c] * xx + f[(c + 1) % 3] * yy)) for c in range(3)], -1)
        out.append(Image.fromarray(np.uint8(img * 255)))
    return out


def _crop(img: Image.Image) -> Image.Image:
    return TVF.center_crop(img, [CROP, CROP])


def _arr(img) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255


# -- the scripts' code path ---------------------------------------------------------------------------
def _warp_perspective(a: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """cv2.warpPerspective(a, mat, (w, h)): bilinear, constant 0 border."""
    h, w = a.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    src = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(mat).T
    sx, sy = src[..., 0] / src[..., 2], src[..., 1] / src[..., 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    out = np.zeros_like(a)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - np.abs(sx - xi)) * (1 - np.abs(sy - yi))
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out += np.where(ok, wgt, 0)[..., None] * a[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
    return out


def _tilt_mat(w: int, h: int, deg: float) -> np.ndarray:
    theta = np.deg2rad(deg)  # the scripts tilt about both axes by the same angle
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    c, s = np.cos(theta), np.sin(theta)
    rx = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]])
    ry = np.array([[c, 0, -s, 0], [0, 1, 0, 0], [s, 0, c, 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1


def _hsv_shift(a: np.ndarray, c: float) -> np.ndarray:
    mx = a.max(-1)
    v = np.clip(mx + c, 0, 1)
    # scaling every channel keeps hue and saturation: rgb = v * (a / max)
    scale = np.where(mx > 0, v / np.maximum(mx, 1e-12), 0)
    out = a * scale[..., None]
    return np.where((mx > 0)[..., None], out, np.repeat(v[..., None], 3, -1))


def _q(a: np.ndarray) -> np.ndarray:
    """``np.uint8(255 * clip(a))``, as the scripts save frames."""
    return np.floor(np.clip(a, 0, 1) * 255) / 255


def reference_frames(img: Image.Image, name: str, rng: np.random.Generator) -> list[np.ndarray]:
    p = IMAGENET_P
    x = _arr(_crop(img))
    bilinear = TVF.InterpolationMode.BILINEAR
    if name == "gaussian_noise":
        return [x] + [
            np.floor(np.clip(x + p.gaussian_sigma * rng.standard_normal(x.shape), 0, 1) * 255) / 255 for _ in range(30)
        ]
    if name == "shot_noise":
        return [x] + [
            np.floor(np.clip(rng.poisson(x * p.shot_rate) / p.shot_rate, 0, 1) * 255) / 255 for _ in range(30)
        ]
    if name == "motion_blur":
        return [np.floor(imagemagick_motion(x, 10, 3, (i - 30) * 4) * 255 + 0.5) / 255 for i in range(31)]
    if name == "zoom_blur":
        avg, out = x.copy(), [x]
        for i in range(1, 31):
            avg += _arr(_crop(TVF.affine(img, 0, [0, 0], 1 + 0.004 * i, [0.0], bilinear)))
            out.append(np.floor(avg / (i + 1) * 255) / 255)
        return out
    if name == "snow":
        from assembled.data.corruptions.ops import zoom

        layer = rng.normal(size=(CROP, CROP), loc=0.05, scale=0.3)
        layer = zoom(torch.from_numpy(layer)[None, None].float(), 3)[0, 0].numpy()
        layer[layer < 0.5] = 0
        layer = np.floor(np.clip(layer, 0, 1) * 255) / 255
        grey = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
        base = 0.85 * x + 0.15 * np.maximum(x, grey * 1.5 + 0.5)
        out = []
        for i in range(31):
            moving = np.round(imagemagick_motion(layer[..., None], 14, 4, i * 4 - 150) * 255) / 255
            out.append(np.floor(np.clip(base + moving + np.rot90(moving, 2), 0, 1) * 255) / 255)
        return out
    if name == "brightness":
        return [np.floor(np.clip(_hsv_shift(x, (i - 15) * 0.02), 0, 1) * 255) / 255 for i in range(31)]
    if name == "translate":
        return [_arr(_crop(TVF.affine(img, 0, [i - 20, 0], 1, [0.0]))) for i in range(41)]
    if name == "rotate":
        return [
            _arr(_crop(TVF.affine(img, i - 15, [0, 0], 1, [0.0], TVF.InterpolationMode.BILINEAR))) for i in range(31)
        ]
    if name == "scale":
        return [_arr(_crop(TVF.affine(img, 0, [0, 0], (i * 2.5 + 40) / 100, [0.0], bilinear))) for i in range(31)]
    if name == "tilt":
        a = _arr(img)
        return [
            _arr(_crop(Image.fromarray(np.uint8(_warp_perspective(a, _tilt_mat(CONTEXT, CONTEXT, i - 15)) * 255))))
            for i in range(31)
        ]
    raise AssertionError(name)


def per_step(frames: np.ndarray, noise: bool) -> float:
    """Mean |frame_t - frame_t-1| (noise: |frame_t - frame_0|) in 8-bit levels."""
    ref = frames[:1] if noise else frames[:-1]
    return float(np.abs(frames[1:] - ref).mean() * 255)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return _natural_images()


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_per_step_change_matches_the_reference_scripts(images, name):
    noise = name in ("gaussian_noise", "shot_noise")
    rng = np.random.default_rng(0)
    ref = np.stack([np.stack(reference_frames(img, name, rng)) for img in images], 1)  # T x N x H x W x 3
    ctx = torch.stack([torch.from_numpy(_arr(img)).permute(2, 0, 1) for img in images]).float()
    crops = TVF.center_crop(ctx, [CROP, CROP])
    ours = sequence(crops, name, seed=0, context=ctx).permute(0, 1, 3, 4, 2).double().numpy()
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    a, b = per_step(ours, noise), per_step(ref, noise)
    assert abs(a / b - 1) < 0.10, f"{name}: ours {a:.3f} vs reference {b:.3f} levels per step"
    # and no jump: the largest step is not far above the typical one (the old translate had 4-5x)
    steps = np.abs(np.diff(ours, axis=0)).mean(axis=(1, 2, 3, 4)) * 255
    if not noise:
        assert steps.max() < 3 * np.median(steps) + 1, (name, steps.round(2))
