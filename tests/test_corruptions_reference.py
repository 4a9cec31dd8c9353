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
