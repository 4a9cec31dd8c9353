"""The fast corruption primitives give the numbers of their plain definitions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from assembled.data.corruptions import corrupt, ops


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(3, 3, 24, 28)


def conv_reference(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    kh, kw = kernel.shape[-2:]
    xp = F.pad(x, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode=mode)
    if kernel.dim() == 2:
        return F.conv2d(xp, kernel.expand(x.shape[1], 1, kh, kw), groups=x.shape[1])
    return torch.cat(
        [F.conv2d(xp[i : i + 1], kernel[i].expand(x.shape[1], 1, kh, kw), groups=x.shape[1]) for i in range(len(x))]
    )


@pytest.mark.parametrize("shape", [(1, 5), (3, 3), (9, 9), (4, 7)])
@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_depthwise_matches_conv2d(images, shape, mode):
    kernel = torch.rand(*shape)
    out = ops.depthwise(images, kernel, mode=mode)  # 5 and 9 taps: slices; 28 and 81: FFT
    assert out.shape == images.shape
    assert torch.allclose(out, conv_reference(images, kernel, mode), atol=1e-5), shape


def test_per_image_kernels_match_conv2d(images):
    kernels = torch.rand(len(images), 7, 7)
    assert torch.allclose(ops.depthwise(images, kernels), conv_reference(images, kernels, "replicate"), atol=1e-5)
    sparse = torch.zeros(len(images), 3, 3)
    sparse[:, 1, 1] = torch.tensor([0.5, 1.0, 2.0])  # few taps: the slice path
    assert torch.allclose(ops.depthwise(images, sparse), images * sparse[:, 1, 1].view(-1, 1, 1, 1), atol=1e-6)


@pytest.mark.parametrize("taps", [(slice(9, 15), slice(2, 6)), (slice(0, 4), slice(11, 15))])  # FFT / slices
def test_kernels_with_empty_margins_are_trimmed_to_the_same_sums(images, taps):
    """A motion-blur line fills a corner of its square kernel: depthwise works on the nonzero
    box only (a smaller transform), with the same result as the whole kernel."""
    kernels = torch.zeros(len(images), 15, 15)
    kernels[:, taps[0], taps[1]] = torch.rand(len(images), taps[0].stop - taps[0].start, taps[1].stop - taps[1].start)
    for mode in ("replicate", "reflect"):
        ref = conv_reference(images, kernels, mode)
        assert torch.allclose(ops.depthwise(images, kernels, mode=mode), ref, atol=1e-5), (taps, mode)


@pytest.mark.parametrize("angles", [(-45.0, 0.0, 30.0), (-135.0, -90.0, 170.0)])
def test_motion_blur_is_imagemagicks(images, angles):
    """The one-pass kernel equals ImageMagick's MotionBlurImage loop (MagickCore/effect.c):
    2r+1 Gaussian taps at rounded offsets ahead of the pixel, edges replicated."""
    angle = torch.tensor(angles)
    radius, sigma = 6, 2.0
    width = 2 * radius + 1
    w = [math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(width)]
    w = [v / sum(w) for v in w]
    n, _, h, wd = images.shape
    ref = torch.zeros_like(images)
    for b, deg in enumerate(angles):
        a = math.radians(deg)
        for i in range(width):
            ox, oy = math.ceil(i * math.cos(a) - 0.5), math.ceil(i * math.sin(a) - 0.5)
            rows = (torch.arange(h) + oy).clamp(0, h - 1)
            cols = (torch.arange(wd) + ox).clamp(0, wd - 1)
            ref[b] += w[i] * images[b][:, rows][:, :, cols]
    assert torch.allclose(ops.motion_blur(images, radius, sigma, angle), ref, atol=1e-5)


@pytest.mark.parametrize("size", [(24, 28), (100, 90)])  # matrix path and resampler path
def test_zoom_sum_matches_single_zooms(size):
    x = torch.rand(2, 3, *size)
    factors = [1.0, 1.03, 1.17, 1.26, 2.25]
    ref = sum(ops.zoom(x, f) for f in factors)
    assert torch.allclose(ops.zoom_sum(x, factors), ref, atol=1e-4)


def test_zoom_keeps_the_centre_and_magnifies():
    """A centred square of side 8 in a 33 px image, zoomed 2x, is a centred square of side ~16."""
    x = torch.zeros(1, 1, 33, 33)
    x[..., 12:21, 12:21] = 1
    mask = ops.zoom(x, 2.0)[0, 0] > 0.5
    rows = mask.any(1).nonzero().flatten()
    assert abs(int(rows.numel()) - 18) <= 2
    assert abs((rows.min() + rows.max()).item() / 2 - 16) <= 1


@pytest.mark.parametrize("scale", [250.0, 60.0, 3.0])
def test_scaled_poisson_has_poisson_moments(scale):
    levels = torch.tensor([0, 1, 40, 128, 255]).repeat_interleave(40_000)
    x = (levels.float() / 255).view(1, 1, 1, -1)
    g = torch.Generator().manual_seed(3)
    k = (ops.scaled_poisson(x, scale, g) * scale).round().view(5, -1)
    lam = torch.tensor([0, 1, 40, 128, 255]) / 255 * scale
    assert torch.equal(k[0], torch.zeros_like(k[0]))
    for i in range(1, 5):
        tol = 5 * (lam[i] / 40_000) ** 0.5  # five standard errors of the mean
        assert abs(k[i].mean() - lam[i]) < tol, (i, k[i].mean(), lam[i])
        assert abs(k[i].var() / lam[i] - 1) < 0.05, (i, k[i].var(), lam[i])
        p0 = float((k[i] == 0).float().mean())
        assert abs(p0 - float(torch.exp(-lam[i]))) < 0.01


def test_scaled_poisson_is_seeded_and_falls_back_off_the_uint8_grid():
    x = torch.randint(0, 256, (2, 3, 16, 16)).float() / 255
    draw = [ops.scaled_poisson(x, 60, torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(*draw)
    off_grid = x * 0.997 + 0.001
    out = ops.scaled_poisson(off_grid, 60, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and abs(float(out.mean() - off_grid.mean())) < 0.01


@pytest.mark.parametrize("scale", [500.0, 60.0, 3.0])
def test_scaled_poisson_guide_gives_the_exact_inverse_cdf(scale):
    """The guide table is a shortcut: each draw must be min{k: cdf[k] > u} for its uniform."""
    x = torch.randint(0, 256, (4, 3, 32, 32)).float() / 255
    out = ops.scaled_poisson(x, scale, torch.Generator().manual_seed(7))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).flatten()
    cdf, _ = ops._poisson_tables(scale)
    levels = (x * 255).round().long().flatten()
    k = torch.searchsorted(cdf[levels], u.unsqueeze(1), right=True).flatten()
    assert torch.equal(out, (k.view(x.shape).float() / scale))


def test_brightness_equals_the_hsv_round_trip():
    x = torch.rand(4, 3, 16, 16)
    x[0, :, :4] = 0  # black pixels become grey
    for severity, c in zip(range(1, 6), (0.1, 0.2, 0.3, 0.4, 0.5), strict=True):
        hsv = ops.rgb_to_hsv(x)
        hsv[:, 2] = (hsv[:, 2] + c).clamp(0, 1)
        ref = ops.hsv_to_rgb(hsv)
        assert torch.allclose(corrupt(x, "brightness", severity, family="tiny"), ref, atol=1e-5)


@pytest.mark.parametrize(
    ("size", "sigma"), [(32, 0.32), (32, 1.28), (32, 6.4), (224, 2.44), (224, 19.52), (224, 170.8)]
)  # elastic's sigmas at 32 and 224 px, ImageNet-C's widest reaching past the field twice
def test_smooth_field_is_scipys_reflect_gaussian(size, sigma):
    """Elastic's displacement smoothing: skimage's gaussian(mode='reflect', truncate=3), which is
    scipy's gaussian_filter with those arguments (reflection about pixel edges, kernel cut at 3
    sigma and renormalised). The old field (replicated borders below 16 taps, an untruncated
    Gaussian above) differed from it by up to 2% of the field's range."""
    from scipy.ndimage import gaussian_filter

    field = torch.rand(2, 2, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
    ref = gaussian_filter(field.double().numpy(), (0, 0, sigma, sigma), mode="reflect", truncate=3)
    ours = ops.smooth_field(field, sigma).double().numpy()
    assert abs(ours - ref).max() < 1e-5 * max(1.0, abs(ref).max())


@pytest.mark.parametrize(("h", "w", "factor"), [(64, 64, 0.7), (37, 40, 0.8), (224, 224, 0.6)])
def test_box_resize_is_pils_box_filter(h, w, factor):
    """Pixelate's resampler: down and back up as PIL's Image.BOX does it, 8-bit level for level
    (PIL rounds each pass to 8 bits, halves up; exact since corruption implementation 5)."""
    import numpy as np
    from PIL import Image

    a = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    size = (int(h * factor), int(w * factor))
    small = Image.fromarray(a).resize(size[::-1], Image.BOX)
    back = small.resize((w, h), Image.BOX)

    def tensor(img) -> torch.Tensor:
        return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255

    assert (ops.box_resize(tensor(a), size) - tensor(small)).abs().max() <= 1e-6
    assert (ops.box_resize(tensor(small), (h, w)) - tensor(back)).abs().max() <= 1e-6


@pytest.mark.parametrize("size", [32, 64, 96])  # the three families' zoom lists; 96: the resampler path
def test_severities_at_once_equal_one_at_a_time(size):
    from assembled.data.corruptions import corrupt, corrupt_severities

    x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(size))
    family = {32: "cifar", 64: "tiny", 96: "imagenet"}[size]
    for name in ("zoom_blur", "glass_blur"):
        together = list(corrupt_severities(x, name, seed=5, family=family))
        assert [s for s, _ in together] == [1, 2, 3, 4, 5]
        for s, img in together:
            assert torch.equal(img, corrupt(x, name, s, seed=5, family=family)), (name, s)
