"""Batched image operations the corruptions are made of (N x 3 x H x W floats in [0, 1])."""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    radius = max(1, int(truncate * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


# Above this many taps a filter runs as an FFT product instead of a sum of shifted slices
# (torch's depthwise conv2d is 10-25x slower than either on CPU; both are exact).
SLICE_TAPS = 16


def depthwise(x: torch.Tensor, kernel: torch.Tensor, mode: str = "replicate") -> torch.Tensor:
    """Cross-correlate every channel with a kh x kw kernel, or with one kernel per image
    (N x kh x kw), keeping the size; borders padded by ``mode``."""
    kh, kw = kernel.shape[-2:]
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    if mode == "reflect" and min(x.shape[-2:]) <= max(pad):
        mode = "replicate"
    xp = F.pad(x, pad, mode=mode)
    k = kernel.to(x)
    if kernel.dim() == 3:
        k = k.unsqueeze(1)  # N x 1 x kh x kw, broadcast over channels
    taps = (k != 0).reshape(-1, kh, kw).any(0)
    # trim the kernel to its nonzero taps (a motion-blur line fills half of its square at most)
    # and the padded image with it: the same sums on a smaller transform
    r0, r1 = _span(taps.any(1))
    c0, c1 = _span(taps.any(0))
    if (r0, r1, c0, c1) != (0, kh - 1, 0, kw - 1):
        k, taps = k[..., r0 : r1 + 1, c0 : c1 + 1], taps[r0 : r1 + 1, c0 : c1 + 1]
        h, w = x.shape[-2:]
        xp = xp[..., r0 : r0 + h + r1 - r0, c0 : c0 + w + c1 - c0]
    if int(taps.sum()) <= SLICE_TAPS:
        return _slice_sum(xp, k, taps, x.shape[-2:])
    return _fft_correlate(xp, k, x.shape[-2:])


def _span(nonzero: torch.Tensor) -> tuple[int, int]:
    idx = nonzero.nonzero().flatten()
    return (int(idx[0]), int(idx[-1])) if idx.numel() else (0, nonzero.numel() - 1)


def _slice_sum(xp: torch.Tensor, k: torch.Tensor, taps: torch.Tensor, size: torch.Size) -> torch.Tensor:
    h, w = size
    out = torch.zeros(*xp.shape[:-2], h, w, dtype=xp.dtype, device=xp.device)
    for i, j in taps.nonzero().tolist():
        weight = k[..., i, j]
        view = xp[..., i : i + h, j : j + w]
        if weight.dim() == 0:
            out.add_(view, alpha=float(weight))
        else:
            out.addcmul_(view, weight.view(-1, 1, 1, 1))
    return out


def _fft_correlate(xp: torch.Tensor, k: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Circular convolution with the flipped kernel; the crop keeps only wrap-free outputs,
    so the transform may be zero-padded to a length with small prime factors (a length with
    a large prime factor is several times slower)."""
    kh, kw = k.shape[-2:]
    s = (_fast_length(xp.shape[-2]), _fast_length(xp.shape[-1]))
    spectrum = torch.fft.rfft2(xp, s=s) * torch.fft.rfft2(k.flip(-2, -1), s=s)
    y = torch.fft.irfft2(spectrum, s=s)
    return y[..., kh - 1 : kh - 1 + size[0], kw - 1 : kw - 1 + size[1]].contiguous()


@cache
def _fast_length(n: int) -> int:
    """The smallest m >= n whose prime factors are 2, 3 and 5."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma)
    if k.numel() > SLICE_TAPS:  # one 2-D FFT pass instead of two long 1-D ones
        return depthwise(x, torch.outer(k, k))
    return depthwise(depthwise(x, k.view(1, -1)), k.view(-1, 1))


def smooth_field(x: torch.Tensor, sigma: float, truncate: float = 3.0) -> torch.Tensor:
    """scipy's ``gaussian_filter(x, sigma, mode='reflect', truncate=3)`` over the last two
    axes (elastic's field; skimage's ``gaussian(mode='reflect', truncate=3)`` calls it): the
    normalised sampled Gaussian of radius ``int(truncate * sigma + 0.5)``, borders mirrored
    about the pixel edges. A mirrored axis is periodic (period 2n), so the kernel is folded
    onto one period and applied as one circular FFT product per axis: exact for any radius,
    including ImageNet-C's widest (radius 512 on a 224-px field)."""
    if sigma <= 0:
        return x
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    for dim in (-1, -2):
        n = x.shape[dim]
        period = torch.zeros(2 * n, dtype=torch.float64).index_add_(0, t.long() % (2 * n), k)
        # symmetric kernel: correlation = convolution; the field's own precision (float32:
        # within 1e-6 of scipy's float64, at half the cost)
        transfer = torch.fft.rfft(period).to(x.device, x.dtype.to_complex())
        spectrum = torch.fft.rfft(torch.cat([x, x.flip(dim)], dim), dim=dim)
        spectrum = spectrum * (transfer if dim == -1 else transfer.view(-1, 1))
        x = torch.fft.irfft(spectrum, n=2 * n, dim=dim).narrow(dim, 0, n)
    return x.contiguous()


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """Hendrycks' defocus kernel: a normalised disk, softened by ``cv2.GaussianBlur`` with its
    default mirrored border and not renormalised, so a disk that touches the window's edge
    (radius 8 and 10) sums to 1.011-1.013 as the reference's does."""
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
    k = depthwise(disk[None, None], torch.outer(g, g), mode="reflect")[0, 0]
    # small radii leave most of the window zero: crop to the support (same result, far fewer MACs)
    nz = (k > 0).nonzero() - span
    r = int(nz.abs().max())
    return k[span - r : span + r + 1, span - r : span + r + 1]


def identity_grid(n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    ys = torch.linspace(-1, 1, h, device=device)
    xs = torch.linspace(-1, 1, w, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(n, h, w, 2)


def sample(x: torch.Tensor, grid: torch.Tensor, padding: str = "border", align_corners: bool = True) -> torch.Tensor:
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=align_corners)


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


def _clipped_zoom(size: int, factor: float) -> tuple[int, int, int, int]:
    """Along one axis of Hendrycks' clipped_zoom: crop length and start, resized length, trim start."""
    crop = math.ceil(size / factor)
    out = round(crop * factor)
    return crop, (size - crop) // 2, out, (out - size) // 2


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Centre zoom-in by ``factor`` (>= 1), output size unchanged: Hendrycks' clipped_zoom
    (crop ceil(size / factor) at the centre, resize it bilinearly corner to corner, trim)."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    ch, top, oh, trim_y = _clipped_zoom(h, factor)
    cw, left, ow, trim_x = _clipped_zoom(w, factor)
    y = F.interpolate(x[..., top : top + ch, left : left + cw], size=(oh, ow), mode="bilinear", align_corners=True)
    return y[..., trim_y : trim_y + h, trim_x : trim_x + w]


def separable(x: torch.Tensor, ry: torch.Tensor, rx: torch.Tensor, into: torch.Tensor | None = None) -> torch.Tensor:
    """``ry @ image @ rx.T`` for every image and channel (a separable linear resampling), as
    two GEMMs; with ``into`` (N*C x H' x W') the result is added there instead."""
    n, c, h, w = x.shape
    rows = (x.reshape(-1, w) @ rx.T).view(n * c, h, rx.shape[0])
    if into is not None:
        return into.baddbmm_(ry.expand(n * c, -1, -1), rows)
    return torch.bmm(ry.expand(n * c, -1, -1), rows).view(n, c, ry.shape[0], rx.shape[0])


def box_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's ``resize(..., Image.BOX)`` on an 8-bit image (pixelate's resampler; at fractional
    scales it is not torch's 'area' mode): each output pixel averages the input pixels whose
    centres its box covers. PIL resamples the width, stores 8-bit levels, then the height, and
    rounds halves up each time (its fixed-point sums start at one half); so does this."""
    h, w = x.shape[-2:]
    levels = (x * 255).round()
    wide = _pil_round(levels @ _box_matrix(w, size[1]).to(x).T)
    return _pil_round(_box_matrix(h, size[0]).to(x) @ wide) / 255


def _pil_round(levels: torch.Tensor) -> torch.Tensor:
    # halves up; the 1e-3 absorbs float error in weights like 1/3 (no true mean is that close to .5)
    return (levels + 0.5 + 1e-3).floor().clamp(0, 255)


@cache
def _box_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """PIL's BOX filter coefficients (ImagingResample's precompute_coeffs) as a matrix."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), size_in)
        for j in range(lo, hi):
            if -0.5 < (j - centre + 0.5) / filterscale <= 0.5:
                m[i, j] = 1.0
        m[i] /= m[i].sum()
    return m.float()


# Up to this size a sum of zooms runs as dense matrix products (compute-bound GEMMs beat the
# memory-bound resampler there); above it the dense matrices' cost grows as size^3.
GEMM_ZOOM_MAX = 80


def zoom_sum(x: torch.Tensor, factors: list[float]) -> torch.Tensor:
    """Sum of ``zoom(x, f)`` over ``factors`` (zoom blur), with the same numbers."""
    return zoom_sums(x, [factors])[0]


def zoom_sums(x: torch.Tensor, factor_lists: list[list[float]]) -> list[torch.Tensor]:
    """``zoom_sum`` for several ascending factor lists at once: each distinct factor is zoomed
    once and added to every list that holds it, in ascending order, so each sum is bitwise the
    one a single list gives. Zoom blur's severities share most factors (the 32/64-px sets' lists
    are prefixes of one another: 26 zooms instead of 80). Each zoom is separable,
    Ry @ image @ Rx^T, so on small images it is two GEMMs."""
    if any(list(fs) != sorted(fs) for fs in factor_lists):
        raise ValueError("zoom factor lists must be ascending")
    n, c, h, w = x.shape
    sums = [torch.zeros_like(x) for _ in factor_lists]
    for f in sorted({f for fs in factor_lists for f in fs}):
        if max(h, w) > GEMM_ZOOM_MAX:
            z = zoom(x, f)
        else:
            z = separable(x, _zoom_matrix(h, f).to(x), _zoom_matrix(w, f).to(x))
        for total, fs in zip(sums, factor_lists, strict=True):
            if f in fs:
                total += z
    return sums


@cache
def _zoom_matrix(size: int, factor: float) -> torch.Tensor:
    """``zoom`` along one axis as a size x size matrix (two bilinear taps per row)."""
    if factor == 1:
        return torch.eye(size)
    crop, start, out, trim = _clipped_zoom(size, factor)
    pos = torch.arange(trim, trim + size, dtype=torch.float64)
    src = pos * (crop - 1) / max(out - 1, 1) + start
    i0 = src.floor().long().clamp(0, size - 1)
    frac = src - i0
    m = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    m.index_put_((rows, i0), 1 - frac, accumulate=True)
    m.index_put_((rows, (i0 + 1).clamp(max=size - 1)), frac, accumulate=True)
    return m.float()


def release_jpeg(x: torch.Tensor, quality: int = 85) -> torch.Tensor:
    """The corrupted images as the released ImageNet-C / Tiny-ImageNet-C files hold them: 8-bit
    (``np.uint8`` truncates) and saved as JPEG at ``quality`` (libjpeg through torchvision, as
    PIL's ``save(quality=85)``), decoded back to floats in [0, 1]."""
    u8 = x.mul(255).add_(1e-4).clamp_(0, 255).to(torch.uint8).cpu()  # truncation, as np.uint8
    return jpeg_roundtrip(u8, quality).to(x.device, torch.float32).div_(255)


def jpeg_roundtrip(u8: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode N x 3 x H x W uint8 images as JPEG (libjpeg through torchvision).
    Slices coded in parallel threads were not faster on 2 cores (median of 40 calls)."""
    import torchvision.io as tio

    return torch.stack(tio.decode_jpeg(tio.encode_jpeg(list(u8), quality=quality)))


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle_deg: torch.Tensor) -> torch.Tensor:
    """ImageMagick's ``MotionBlurImage`` (Wand's ``motion_blur``, which Hendrycks' scripts call):
    ``2 ceil(radius) + 1`` Gaussian weights ``exp(-i^2 / 2 sigma^2)``, normalised, on the pixels
    at the integer offsets ``(ceil(i cos a - 0.5), ceil(i sin a - 0.5))`` ahead of each pixel,
    edges replicated. Drawn as one kernel per image, applied in a single filter pass."""
    width = 2 * math.ceil(radius) + 1 if radius > 0 else 1
    i = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * max(sigma, 1e-6) ** 2))
    weights /= weights.sum()
    a = torch.deg2rad(angle_deg.double()).view(-1, 1)
    ox = torch.ceil(i * a.cos() - 0.5).long()
    oy = torch.ceil(i * a.sin() - 0.5).long()
    n, r = a.shape[0], width - 1
    kernel = torch.zeros(n, 2 * r + 1, 2 * r + 1, dtype=torch.float64)
    img = torch.arange(n).view(-1, 1).expand(n, width)
    # cross-correlation: out[p] = sum_k kernel[k] x[p + k - r], so offset o sits at r + o
    kernel.index_put_((img, r + oy, r + ox), weights.expand(n, width).clone(), accumulate=True)
    return depthwise(x, kernel.float(), mode="replicate")


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
    """Glass blur's pixel jitter as Hendrycks' script does it: ``iterations`` raster scans from
    the bottom-right, each position p taking the value at p + (dy, dx), dy, dx in
    [-max_delta, max_delta - 1]. The script's "swap" of two numpy views is a copy (q keeps its
    value), and a value copied into an already scanned position can be copied on again."""
    n, c, h, w = x.shape
    src = torch.arange(h * w).expand(n, h * w)
    rows, cols = glass_scan(h, max_delta), glass_scan(w, max_delta)
    for _ in range(iterations):
        offsets = torch.randint(-max_delta, max_delta, (n, 2, len(rows), len(cols)), generator=g)
        src = src.gather(1, sequential_copy_index(h, w, max_delta, offsets))
    idx = src.to(x.device).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, idx).view(n, c, h, w)


def glass_scan(size: int, max_delta: int) -> torch.Tensor:
    """Rows (or columns) the script visits, in its order: size - d down to d + 1."""
    return torch.arange(size - max_delta, max_delta, -1)


def sequential_copy_index(h: int, w: int, max_delta: int, offsets: torch.Tensor) -> torch.Tensor:
    """For one raster scan of copies x[p] <- x[p + offset] (offsets: N x 2 x rows x cols as
    (dy, dx), in ``glass_scan`` order), the pixel of the input each output pixel ends up with.

    The scan is sequential, but its result is not: p reads q's input value unless q was
    visited earlier in the scan, in which case p gets whatever q got. Those links form chains
    that point jumping resolves in log(chain length) batched gathers."""
    n = offsets.shape[0]
    rows, cols = glass_scan(h, max_delta), glass_scan(w, max_delta)
    if not (len(rows) and len(cols)):
        return torch.arange(h * w).repeat(n, 1)  # too small to scan: every pixel keeps its own
    p = (rows.view(-1, 1) * w + cols.view(1, -1)).reshape(-1)
    qy = rows.view(1, -1, 1) + offsets[:, 0]
    qx = cols.view(1, 1, -1) + offsets[:, 1]
    q = (qy * w + qx).reshape(n, -1)
    visited_before = _scanned_before(qy, qx, rows, cols).reshape(n, -1)
    parent = torch.arange(h * w).repeat(n, 1)
    source = parent.clone()
    p = p.expand(n, -1)
    parent.scatter_(1, p, torch.where(visited_before, q, p))
    source.scatter_(1, p, q)
    while True:
        jumped = parent.gather(1, parent)
        if torch.equal(jumped, parent):
            return source.gather(1, parent)
        parent = jumped


def _scanned_before(qy: torch.Tensor, qx: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Whether q = (qy, qx) is inside the scanned area and visited before its p (rows
    descending, then columns descending)."""
    py, px = rows.view(1, -1, 1), cols.view(1, 1, -1)
    inside = (qy <= rows[0]) & (qx >= cols[-1]) & (qx <= cols[0])  # qy > py >= rows[-1] below
    return inside & ((qy > py) | ((qy == py) & (qx > px)))


def scaled_poisson(x: torch.Tensor, scale: float, g: torch.Generator) -> torch.Tensor:
    """Poisson(x * scale) / scale (shot noise). Images from uint8 crops take 256 values, so
    each pixel is drawn by inverse CDF from its value's exact table, one float64 uniform per
    pixel (torch.poisson's per-element sampler was 2-3x slower on CPU here); other inputs use
    torch.poisson."""
    q = x * 255
    levels = q.round()
    if bool((q - levels).abs().amax() > 1e-3) or bool(levels.amin() < 0) or bool(levels.amax() > 255):
        return torch.poisson(x.cpu().double() * scale, generator=g).to(x) / scale
    cdf, guide = _poisson_tables(float(scale))
    width, buckets = cdf.shape[1], guide.shape[1]
    u = torch.rand(x.shape, generator=g, dtype=torch.float64).flatten()
    lv = levels.cpu().flatten().long()
    # the answer is min{k: cdf[k] > u}. The guide holds it for every u of a bucket, or, where a
    # CDF value falls inside the bucket (a few % of draws), -1 - the smallest candidate: those
    # step up once, and the rare rest (several CDF values in one bucket) search their row
    k = guide.take(lv * buckets + (u * buckets).long().clamp_(max=buckets - 1)).long()
    open_ = (k < 0).nonzero().flatten()
    if open_.numel():
        row, ko, uo = lv[open_] * width, -1 - k[open_], u[open_]
        ko += cdf.take(row + ko) <= uo
        left = (cdf.take(row + ko) <= uo).nonzero().flatten()
        if left.numel():
            rows = cdf[lv[open_[left]]]
            ko[left] = torch.searchsorted(rows, uo[left].unsqueeze(1), right=True).flatten()
        k[open_] = ko
    return k.view(x.shape).to(x) / scale


@cache
def _poisson_tables(scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CDFs of Poisson(level / 255 * scale), level 0..255, and a guide per level over 4096 equal
    buckets of u: the answer where it holds for the whole bucket, else -1 - the answer at the
    bucket's lower edge."""
    lam = torch.arange(256, dtype=torch.float64).view(-1, 1) / 255 * scale
    width = int(scale + 12 * math.sqrt(scale) + 20)  # the tail beyond it is below 1e-15
    k = torch.arange(width, dtype=torch.float64).view(1, -1)
    logpmf = k * lam.clamp_min(1e-300).log() - lam - torch.lgamma(k + 1)
    logpmf[0] = torch.where(k[0] == 0, 0.0, -math.inf)  # rate 0 gives 0
    cdf = logpmf.exp().cumsum(1)
    cdf[:, -1] = 2.0  # every search ends inside the table
    buckets = 4096
    edges = (torch.arange(buckets + 1, dtype=torch.float64) / buckets).expand(256, -1)
    first = torch.searchsorted(cdf, edges[:, :-1].contiguous(), right=True)  # the answer at the lower edge
    whole = cdf.gather(1, first) >= edges[:, 1:]  # ... and at every u of the bucket
    return cdf, torch.where(whole, first, -1 - first).to(torch.int32)


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
