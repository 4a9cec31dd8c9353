"""ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019), batched in torch.

``corrupt(images, name, severity, seed)`` takes and returns float N x 3 x H x W in [0, 1] on
the images' device. Randomness comes from a CPU generator seeded by (seed, name, severity),
so the same inputs give the same corrupted images on every machine and device. Constants are
the published ones for the resolution family (``params.severity_set``); spatial constants of
the 224-px set are rescaled to the actual size (``scaled=False``: kept as published, as the
official Assemble generator did at 256 px). Glass blur's sequential pixel copies, spatter's
OpenCV shading and ImageMagick's motion blur (motion_blur, snow) are reproduced exactly in
batched form (tested against the scripts' loops and cv2); zoom and pixelate resample as the
originals do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

import torch
import torch.nn.functional as F
import torchvision

from ...robustness_sets import CORRUPTIONS, EXTRA_CORRUPTIONS
from . import ops
from .params import FROST_SCALE, NATIVE, SETS, severity_set
from .spatter import water_shading

STANDARD = CORRUPTIONS
EXTRA = EXTRA_CORRUPTIONS
# the generation of the images made here: robustness_sets.CORRUPTION_IMPLEMENTATION (bump it there)


def names(include_extra: bool = False) -> list[str]:
    """The 15 standard corruptions (and the official code's 4 extras)."""
    return list(STANDARD + (EXTRA if include_extra else ()))


class Ctx:
    """What a corruption needs besides the image: its constant, RNG, scale to the native size."""

    def __init__(self, param, g: torch.Generator, family: str, size: int, scaled: bool = True) -> None:
        self.c = param
        self.g = g
        self.family = family
        self.scale = size / NATIVE[family] if scaled else 1.0

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.g)


def _gaussian_noise(x, k):
    return x + k.randn(*x.shape).to(x) * k.c


def _shot_noise(x, k):
    return ops.scaled_poisson(x, k.c, k.g)


def _impulse_noise(x, k):
    u = k.rand(*x.shape).to(x)  # u < c: hit, salt (1) in its lower half and pepper (0) above
    return torch.where(u < k.c, (u < k.c / 2).to(x), x)


def _speckle_noise(x, k):
    return x + x * k.randn(*x.shape).to(x) * k.c


def _gaussian_blur(x, k):
    return ops.gaussian_blur(x, k.c * k.scale)


def _glass_blur(x, k):
    sigma, delta, iters = k.c
    y = (ops.gaussian_blur(x, sigma * k.scale) * 255).floor() / 255  # uint8 round trip of the original
    y = ops.local_shuffle(y, max(1, round(delta * k.scale)), iters, k.g)
    return ops.gaussian_blur(y, sigma * k.scale)


def _defocus_blur(x, k):
    radius, alias = k.c
    return ops.depthwise(x, ops.disk_kernel(radius * k.scale, alias), mode="reflect")


def _motion_blur(x, k):
    radius, sigma = k.c
    angle = k.rand(x.shape[0]) * 90 - 45
    return ops.motion_blur(x, radius * k.scale, sigma * k.scale, angle)


def _zoom_blur(x, k):
    return (x + ops.zoom_sum(x, [float(z) for z in k.c])) / (len(k.c) + 1)


def _snow(x, k):
    loc, scale, zoom_f, thr, radius, sigma, blend = k.c
    n, _, h, w = x.shape
    layer = (k.randn(n, 1, h, w) * scale + loc).to(x)
    layer = ops.zoom(layer, zoom_f)
    layer = torch.where(layer < thr, torch.zeros_like(layer), layer).clamp(0, 1)
    # the script hands the layer to ImageMagick as an 8-bit PNG (astype: floor) and reads an
    # 8-bit PNG back (ImageMagick rounds to the nearest level)
    layer = (layer * 255).floor() / 255
    layer = ops.motion_blur(layer, radius * k.scale, sigma * k.scale, k.rand(n) * 90 - 135)
    layer = (layer * 255 + 0.5).floor() / 255
    x = blend * x + (1 - blend) * torch.maximum(x, ops.grayscale(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-1, -2)


@cache
def _frost_images() -> tuple[torch.Tensor, ...]:
    """The six frost photographs shipped as package data of ``imagecorruptions`` (read without
    importing it: its import fails beside torch 2.14.1's setuptools)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("imagecorruptions")
    except metadata.PackageNotFoundError as e:
        raise RuntimeError(
            "frost needs the photographs in the 'imagecorruptions' wheel: pip install --no-deps imagecorruptions==1.1.2"
        ) from e
    files = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
    out = []
    for f in files:
        path = dist.locate_file(f"imagecorruptions/frost/{f}")
        out.append(torchvision.io.decode_image(str(path), mode=torchvision.io.ImageReadMode.RGB).float() / 255)
    return tuple(out)


@cache
def _frost_resized(idx: int, factor: float, h: int, w: int) -> torch.Tensor:
    img = _frost_images()[idx]
    if factor == 1:
        return img
    # cv2.resize(fx=fy=factor), as the 32/64-px scripts: bilinear at the given scale, no anti-aliasing
    return F.interpolate(img[None], scale_factor=factor, mode="bilinear", recompute_scale_factor=False)[0]


def _frost(x, k):
    a, b = k.c
    n, _, h, w = x.shape
    factor = FROST_SCALE[k.family] * k.scale
    layers = []
    for _ in range(n):
        idx = int(k.rand(1).item() * 5)
        img = _frost_resized(idx, factor, h, w)
        th, tw = img.shape[-2:]
        y0 = int(k.rand(1).item() * (th - h))
        x0 = int(k.rand(1).item() * (tw - w))
        layers.append(img[:, y0 : y0 + h, x0 : x0 + w])
    return a * x + b * torch.stack(layers).to(x)


def _fog(x, k):
    strength, decay = k.c
    n, _, h, w = x.shape
    size = 1 << max(h, w, 2).bit_length() if max(h, w) & (max(h, w) - 1) else max(h, w)
    size = max(size, 256 if k.family == "imagenet" else NATIVE[k.family])
    fog = ops.plasma_fractal(n, size, decay, k.g)[:, :h, :w].unsqueeze(1).to(x)
    peak = x.amax((1, 2, 3), keepdim=True)
    return (x + strength * fog) * peak / (peak + strength)


def _brightness(x, k):
    """V += c in HSV. With hue and saturation fixed, RGB is proportional to V, so this is a
    per-pixel rescale (grey V' where V was 0) without the HSV round trip."""
    x = x.clamp(0, 1)
    v = x.amax(1, keepdim=True)
    v2 = (v + k.c).clamp(0, 1)
    return torch.where(v > 0, x * (v2 / v.clamp_min(1e-12)), v2)


def _saturate(x, k):
    hsv = ops.rgb_to_hsv(x.clamp(0, 1))
    hsv[:, 1] = (hsv[:, 1] * k.c[0] + k.c[1]).clamp(0, 1)
    return ops.hsv_to_rgb(hsv)


def _contrast(x, k):
    mean = x.mean((2, 3), keepdim=True)
    return (x - mean) * k.c + mean


def _elastic_transform(x, k):
    alpha, sigma, affine_amp = (v * k.scale for v in k.c)
    n, _, h, w = x.shape
    # random affine: three anchor points moved by up to +-affine_amp pixels
    centre, sq = torch.tensor([w // 2, h // 2], dtype=torch.float32), min(h, w) // 3
    src = torch.stack([centre + sq, torch.stack([centre[0] + sq, centre[1] - sq]), centre - sq])
    dst = src + (k.rand(n, 3, 2) * 2 - 1) * affine_amp
    # inverse map: output pixel (dst) samples input (src)
    theta = torch.linalg.solve(torch.cat([dst, torch.ones(n, 3, 1)], 2), src.expand(n, 3, 2)).mT
    # convert the pixel-space affine to grid_sample's normalised coordinates
    to_norm = torch.tensor([[2 / max(w - 1, 1), 0, -1], [0, 2 / max(h - 1, 1), -1], [0, 0, 1]])
    from_norm = torch.linalg.inv(to_norm)
    full = torch.cat([theta, torch.tensor([[[0, 0, 1.0]]]).expand(n, 1, 3)], 1)
    theta_n = (to_norm @ full @ from_norm)[:, :2]
    x = ops.affine(x, theta_n.to(x.device), padding="reflection")
    # smooth random displacement field
    field = ops.smooth_field((k.rand(n, 2, h, w) * 2 - 1).to(x), sigma) * alpha
    # scipy's map_coordinates(mode='reflect') mirrors about the pixel edges (d c b a | a b c d):
    # grid_sample's reflection with align_corners=False, pixel p at (2p + 1) / size - 1
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gx = (2 * (xs + field[:, 0]) + 1) / w - 1
    gy = (2 * (ys + field[:, 1]) + 1) / h - 1
    return ops.sample(x, torch.stack([gx, gy], -1), padding="reflection", align_corners=False)


def _pixelate(x, k):
    h, w = x.shape[-2:]
    small = ops.box_resize(x, (max(1, int(h * k.c)), max(1, int(w * k.c))))
    return ops.box_resize(small, (h, w))


def _jpeg_compression(x, k):
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return ops.jpeg_roundtrip(u8, int(k.c)).to(x.device, x.dtype) / 255


def _spatter(x, k):
    """Hendrycks' spatter: a thresholded, blurred liquid layer, either water (shaded by the
    script's OpenCV pipeline, ``water_shading``) or mud."""
    loc, scale, sigma, thr, strength, mud = k.c
    n, _, h, w = x.shape
    liquid = ops.gaussian_blur((k.randn(n, 1, h, w) * scale + loc).to(x), sigma * k.scale)
    liquid = torch.where(liquid < thr, torch.zeros_like(liquid), liquid)
    if mud == 0:
        liquid8 = (liquid[:, 0] * 255).floor().clamp(0, 255).cpu()  # the script's astype(np.uint8)
        m = (liquid8 * water_shading(liquid8)).to(x)
        m = m / m.amax((1, 2), keepdim=True).clamp_min(1e-6) * strength
        colour = torch.tensor([175, 238, 238], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) / 255
        return x + m.unsqueeze(1) * colour
    m = ops.gaussian_blur((liquid > thr).to(x), strength * k.scale)
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    colour = torch.tensor([63, 42, 20], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) / 255
    return x * (1 - m) + colour * m


CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "gaussian_blur": _gaussian_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "spatter": _spatter,
    "brightness": _brightness,
    "contrast": _contrast,
    "saturate": _saturate,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}


def _check(images: torch.Tensor, name: str) -> None:
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected N x 3 x H x W images, got {tuple(images.shape)}")


@torch.no_grad()
def corrupt(
    images: torch.Tensor, name: str, severity: int, seed: int = 0, family: str | None = None, scaled: bool = True
) -> torch.Tensor:
    """Corrupt a batch. ``family`` (imagenet / tiny / cifar) defaults to the one for the size;
    ``scaled=False`` keeps the family's spatial constants (blur radii, shuffle distances,
    elastic and frost scales) at their published values whatever the size."""
    _check(images, name)
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    size = min(images.shape[-2:])
    family = family or severity_set(size)
    g = torch.Generator().manual_seed(ops.seed_from(seed, name, severity))
    ctx = Ctx(SETS[family][name][severity - 1], g, family, size, scaled)
    return CORRUPTIONS[name](images.float(), ctx).clamp(0, 1)


@torch.no_grad()
def corrupt_severities(
    images: torch.Tensor, name: str, seed: int = 0, family: str | None = None, scaled: bool = True
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(severity, corrupt(images, name, severity, seed, family))`` for severities 1..5, the
    same images; zoom blur's severities share the zooms their factor lists have in common."""
    _check(images, name)
    if name != "zoom_blur":
        for s in range(1, 6):
            yield s, corrupt(images, name, s, seed, family, scaled)
        return
    x = images.float()
    lists = [[float(z) for z in c] for c in SETS[family or severity_set(min(x.shape[-2:]))][name]]
    for s, (factors, total) in enumerate(zip(lists, ops.zoom_sums(x, lists), strict=True), 1):
        yield s, ((x + total) / (len(factors) + 1)).clamp(0, 1)


__all__ = ["EXTRA", "STANDARD", "corrupt", "corrupt_severities", "names", "severity_set"]
