"""Batched image operations the corruptions are made of (N x 3 x H x W floats in [0, 1])."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    radius = max(1, int(truncate * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def depthwise(x: torch.Tensor, kernel: torch.Tensor, mode: str = "replicate") -> torch.Tensor:
    """Convolve every channel with one 2-D kernel (same padding)."""
    kh, kw = kernel.shape
    c = x.shape[1]
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    if mode == "reflect" and min(x.shape[-2:]) <= max(pad):
        mode = "replicate"
    x = F.pad(x, pad, mode=mode)
    return F.conv2d(x, kernel.to(x).expand(c, 1, kh, kw), groups=c)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma)
    return depthwise(depthwise(x, k.view(1, -1)), k.view(-1, 1))


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """Hendrycks' defocus kernel: a normalised disk, softened by a small Gaussian."""
    if radius <= 8:
        span, ksize = 8, 3
    else:
        span, ksize = int(radius), 5
    t = torch.arange(-span, span + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).float()
    disk /= disk.sum()
    g = torch.arange(ksize, dtype=torch.float32) - (ksize - 1) / 2
    g = torch.exp(-0.5 * (g / max(alias_blur, 1e-3)) ** 2)
    g /= g.sum()
    k = depthwise(disk[None, None], torch.outer(g, g), mode="constant")[0, 0]
    # small radii leave most of the window zero: crop to the support (same result, far fewer MACs)
    nz = (k > 0).nonzero() - span
    r = int(nz.abs().max())
    return k[span - r : span + r + 1, span - r : span + r + 1]


def identity_grid(n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    ys = torch.linspace(-1, 1, h, device=device)
    xs = torch.linspace(-1, 1, w, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(n, h, w, 2)


def sample(x: torch.Tensor, grid: torch.Tensor, padding: str = "border") -> torch.Tensor:
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=True)


def shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Translate each image by (dx, dy) pixels (per-image tensors), edges replicated."""
    n, _, h, w = x.shape
    grid = identity_grid(n, h, w, x.device).clone()
    grid[..., 0] -= (2 * dx / max(w - 1, 1)).view(n, 1, 1)
    grid[..., 1] -= (2 * dy / max(h - 1, 1)).view(n, 1, 1)
    return sample(x, grid)


def affine(x: torch.Tensor, theta: torch.Tensor, padding: str = "border") -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return sample(x, grid, padding)


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Centre zoom-in by ``factor`` (>= 1), output size unchanged."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor
    return affine(x, theta)


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle_deg: torch.Tensor) -> torch.Tensor:
    """ImageMagick-style one-sided motion blur: a Gaussian-weighted trail along ``angle``."""
    taps = max(2, int(round(radius)) + 1)
    weights = torch.exp(-0.5 * (torch.arange(taps, dtype=torch.float32) / max(sigma, 1e-3)) ** 2)
    weights /= weights.sum()
    a = torch.deg2rad(angle_deg.to(x.device).float())
    out = torch.zeros_like(x)
    for t in range(taps):
        out += weights[t].item() * shift(x, t * torch.cos(a), t * torch.sin(a))
    return out


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, (g - b) / safe, torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def plasma_fractal(n: int, mapsize: int, decay: float, g: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps, N x mapsize x mapsize in [0, 1] (fog's texture)."""
    assert mapsize & (mapsize - 1) == 0, "mapsize must be a power of two"
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float64)
    step, wibble = mapsize, 100.0

    def jitter(a: torch.Tensor) -> torch.Tensor:
        return a / 4 + wibble * (torch.rand(a.shape, generator=g, dtype=torch.float64) * 2 - 1) * wibble

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        sq = corners + corners.roll(-1, 1)
        sq = sq + sq.roll(-1, 2)
        m[:, half::step, half::step] = jitter(sq)
        centres = m[:, half::step, half::step]
        corners = m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = jitter(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        m[:, half::step, 0::step] = jitter(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= decay
    flat = m.view(n, -1)
    flat = flat - flat.min(1, keepdim=True).values
    flat = flat / flat.max(1, keepdim=True).values.clamp_min(1e-12)
    return flat.view(n, mapsize, mapsize).float()


def local_shuffle(x: torch.Tensor, max_delta: int, iterations: int, g: torch.Generator) -> torch.Tensor:
    """Glass blur's pixel jitter: every pixel takes a neighbour within +-max_delta (batched
    gather, an approximation of Hendrycks' sequential swaps)."""
    n, c, h, w = x.shape
    for _ in range(iterations):
        d = torch.randint(-max_delta, max_delta, (2, n, h, w), generator=g).to(x.device)
        ys = (torch.arange(h, device=x.device).view(1, h, 1) + d[0]).clamp(0, h - 1)
        xs = (torch.arange(w, device=x.device).view(1, 1, w) + d[1]).clamp(0, w - 1)
        idx = (ys * w + xs).view(n, 1, h * w).expand(n, c, h * w)
        x = x.reshape(n, c, h * w).gather(2, idx).view(n, c, h, w)
    return x


def seed_from(*parts: object) -> int:
    """A stable 63-bit seed from strings and numbers (Python's hash() is salted per process)."""
    acc = 1469598103934665603
    for p in parts:
        for b in str(p).encode():
            acc = ((acc ^ b) * 1099511628211) % (1 << 63)
        acc = (acc * 31 + 7) % (1 << 63)
    return acc


def radians(deg: float) -> float:
    return deg * math.pi / 180
