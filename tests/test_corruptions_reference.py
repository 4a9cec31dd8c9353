"""mCE's remaining gaps against Hendrycks' generation scripts (make_imagenet_c.py and its
32/64-px siblings): the defocus kernel as cv2 makes it, the frost photographs resized as
cv2.resize does at 32/64 px, and the JPEG quality-85 files ImageNet-C was released as."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from assembled.data.corruptions import _frost_images, _frost_resized, corrupt, ops
from assembled.evaluation.robustness import corruption_errors
from assembled.evaluation.suite import EvalConfig


def _cv2_gaussian_blur_reflect101(a: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur(a, (k, k), sigma): getGaussianKernel weights, BORDER_REFLECT_101."""
    t = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma * sigma))
    g /= g.sum()
    p = ksize // 2
    padded = np.pad(a, p, mode="reflect")  # numpy's 'reflect' mirrors without the edge: REFLECT_101
    rows = sum(g[i] * padded[i : i + a.shape[0], :] for i in range(ksize))
    return sum(g[j] * rows[:, j : j + a.shape[1]] for j in range(ksize))


def _reference_disk(radius: float, alias_blur: float) -> np.ndarray:
    span, ksize = (8, 3) if radius <= 8 else (int(radius), 5)
    xx, yy = np.meshgrid(np.arange(-span, span + 1), np.arange(-span, span + 1))
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    return _cv2_gaussian_blur_reflect101(disk / disk.sum(), ksize, alias_blur)


@pytest.mark.parametrize("radius,blur", [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)])  # ImageNet-C
def test_defocus_kernel_is_the_scripts(radius, blur):
    ref = _reference_disk(radius, blur)
    ours = ops.disk_kernel(radius, blur).double().numpy()
    pad = (ref.shape[0] - ours.shape[0]) // 2
    assert np.allclose(np.pad(ours, pad), ref, atol=1e-6)
    assert ours.sum() == pytest.approx(ref.sum(), abs=1e-5)
    if radius >= 8:  # the disk touches the window: mirrored borders add mass, as in the reference
        assert 1.010 < ours.sum() < 1.014


def _cv2_linear_downscale(img: np.ndarray, f: float) -> np.ndarray:
    """cv2.resize(img, (0, 0), fx=f, fy=f), INTER_LINEAR: sample at (d + 0.5) / f - 0.5."""
    h, w = img.shape[1:]
    oh, ow = int(h * f), int(w * f)

    def taps(n_out: int, n_in: int):
        s = np.clip((np.arange(n_out) + 0.5) / f - 0.5, 0, n_in - 1)
        i0 = np.floor(s).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    y0, y1, wy = taps(oh, h)
    x0, x1, wx = taps(ow, w)
    rows = img[:, y0] * (1 - wy)[None, :, None] + img[:, y1] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


@pytest.mark.parametrize("factor", [0.3, 0.2])  # Tiny-ImageNet-C, CIFAR-10-C
def test_frost_photographs_resized_like_cv2(factor):
    img = _frost_images()[0].double().numpy()
    ref = _cv2_linear_downscale(img, factor)
    ours = _frost_resized(0, factor, 32, 32).double().numpy()
    h, w = min(ref.shape[1], ours.shape[1]), min(ref.shape[2], ours.shape[2])
    assert np.abs(ours[:, 1 : h - 1, 1 : w - 1] - ref[:, 1 : h - 1, 1 : w - 1]).mean() * 255 < 0.5
    # without anti-aliasing the texture keeps its edges (the old resize was 40-70% smoother)
    smooth = torch.nn.functional.interpolate(
        torch.from_numpy(img)[None], size=ours.shape[1:], mode="bilinear", antialias=True
    )[0].numpy()
    assert np.abs(np.diff(ours, axis=2)).mean() > 1.3 * np.abs(np.diff(smooth, axis=2)).mean()


def _images(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return ops.gaussian_blur(torch.rand(4, 3, size, size, generator=g), 1.5)


def test_release_jpeg_is_pils_quality_85():
    x = _images(224)
    ours = ops.release_jpeg(x)
    for i in range(x.shape[0]):
        u8 = (x[i].clamp(0, 1) * 255 + 1e-4).floor().to(torch.uint8).permute(1, 2, 0).numpy()
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="JPEG", quality=85, optimize=True)  # the script's save
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float64)
        assert np.abs(ours[i].permute(1, 2, 0).numpy() * 255 - ref).mean() < 0.5


class _Recorder(nn.Module):
    """Records what corruption_errors feeds the model; predicts class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(x.shape[0], 2)


@pytest.mark.parametrize("size,jpeg", [(64, True), (32, False)])
def test_jpeg_step_only_where_the_sets_were_released_as_jpeg(size, jpeg):
    x = _images(size)
    u8 = (x * 255).to(torch.uint8)
    model = _Recorder()
    corruption_errors(model, u8, torch.zeros(4, dtype=torch.long), ["fog"], torch.device("cpu"))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    fed = model.seen[0] * std + mean  # severity 1
    raw = corrupt(u8.float() / 255, "fog", 1, seed=0)
    expected = ops.release_jpeg(raw) if jpeg else raw
    assert torch.allclose(fed, expected, atol=1e-5)
    off = _Recorder()
    corruption_errors(off, u8, torch.zeros(4, dtype=torch.long), ["fog"], torch.device("cpu"), released_jpeg=False)
    assert torch.allclose(off.seen[0] * std + mean, raw, atol=1e-5)
    assert EvalConfig().released_jpeg and EvalConfig(released_jpeg=False).identity() != EvalConfig().identity()


def _script_glass_scan(x: np.ndarray, d: int, offsets: list[np.ndarray]) -> np.ndarray:
    """make_imagenet_c.py's glass-blur loop, verbatim in behaviour: `x[p], x[q] = x[q], x[p]`
    on numpy views, which copies q into p and leaves q as it was."""
    x = x.copy()
    h_max, w_max = x.shape[:2]
    for off in offsets:
        for i, h in enumerate(range(h_max - d, d, -1)):
            for j, w in enumerate(range(w_max - d, d, -1)):
                dy, dx = off[0, i, j], off[1, i, j]
                x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
    return x


@pytest.mark.parametrize("h,w,d,iters", [(20, 17, 2, 2), (32, 32, 1, 3), (40, 40, 4, 2)])
def test_glass_blur_scan_is_the_scripts_sequential_copies(h, w, d, iters):
    x = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    g = torch.Generator().manual_seed(d)
    offsets = [
        torch.randint(-d, d, (1, 2, len(ops.glass_scan(h, d)), len(ops.glass_scan(w, d))), generator=g)
        for _ in range(iters)
    ]
    src = torch.arange(h * w).expand(1, h * w)
    for off in offsets:
        src = src.gather(1, ops.sequential_copy_index(h, w, d, off))
    ours = torch.from_numpy(x).reshape(h * w, 3)[src[0]].reshape(h, w, 3).numpy()
    assert np.array_equal(ours, _script_glass_scan(x, d, [o[0].numpy() for o in offsets]))
    if d == 1:
        return  # offsets in {-1, 0} only read unvisited pixels: no chains at severity 1
    # the script moves values along chains: a one-shot gather from the input (the old code) differs
    one_shot = torch.arange(h * w)
    rows, cols = ops.glass_scan(h, d), ops.glass_scan(w, d)
    for off in offsets:
        p = (rows.view(-1, 1) * w + cols.view(1, -1)).reshape(-1)
        q = ((rows.view(-1, 1) + off[0, 0]) * w + cols.view(1, -1) + off[0, 1]).reshape(-1)
        step = torch.arange(h * w)
        step[p] = q
        one_shot = one_shot[step]
    assert not np.array_equal(torch.from_numpy(x).reshape(h * w, 3)[one_shot].reshape(h, w, 3).numpy(), ours)


def _script_water(x: np.ndarray, liquid: np.ndarray, strength: float) -> np.ndarray:
    """make_imagenet_c.py's spatter, water branch (c[5] == 0), from its thresholded liquid layer
    on: the script's own cv2 calls."""
    import cv2  # installed by `make install` (dev extra)

    liquid = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(liquid, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = liquid * dist
    m = m / m.max() * strength
    colour = np.array([175, 238, 238], dtype=np.float32) / 255
    return np.clip(x + m[..., None] * colour, 0, 1)


@pytest.mark.parametrize("size,severity", [(224, 1), (224, 3), (64, 2), (32, 1)])
def test_spatter_water_is_the_scripts(size, severity):
    from assembled.data.corruptions.params import SETS, severity_set

    x = _images(size)
    loc, scale, sigma, thr, strength, mud = SETS[severity_set(size)]["spatter"][severity - 1]
    assert mud == 0
    ours = corrupt(x, "spatter", severity, seed=3)
    # the same draws as corrupt: the liquid layer before the script's OpenCV steps
    g = torch.Generator().manual_seed(ops.seed_from(3, "spatter", severity))
    liquid = ops.gaussian_blur(torch.randn(4, 1, size, size, generator=g) * scale + loc, sigma)[:, 0]
    liquid = torch.where(liquid < thr, torch.zeros_like(liquid), liquid).numpy()
    for i in range(4):
        ref = _script_water(x[i].permute(1, 2, 0).numpy(), liquid[i], strength)
        diff = np.abs(ours[i].permute(1, 2, 0).numpy() - ref) * 255
        assert diff.max() < 0.01, (i, diff.max())
    # without the shading (the old approximation) the water is far stronger
    plain = x + torch.from_numpy(liquid / liquid.max((1, 2), keepdims=True) * strength)[:, None].float() * (
        torch.tensor([175, 238, 238]).view(1, 3, 1, 1) / 255
    )
    assert (plain.clamp(0, 1) - x).abs().mean() > 1.5 * (ours - x).abs().mean()
