"""Geometry on whole uint8 batches, on any device: per-sample resized crops (RandomResizedCrop's
crop, then resize) and the evaluation resize + centre crop.

Why not torchvision's per-image ops: one call per image costs ~1.5 ms on a CPU core at 32 px
(more than a small model's step per image) and a kernel launch per image on a GPU. Here a resize
is two batched matrix products with per-sample weights, computed the way torchvision's
antialiased bilinear resize (PIL's resampling) computes them: a triangle filter widened by the
downscaling factor, half-pixel centres, the window clipped to the crop. So the output equals
torchvision's ``resized_crop(..., antialias=True)`` up to its uint8 fixed-point rounding (at most
one level; tests/test_batch_augment.py).
"""

from __future__ import annotations

import math

import torch


def resample_weights(start: torch.Tensor, length: torch.Tensor, out_size: int, in_size: int) -> torch.Tensor:
    """(N, out_size, in_size) weights mapping source pixels ``[start, start + length)`` of each
    sample onto ``out_size`` pixels: bilinear, antialiased when downscaling (PIL's support rule)."""
    start = start.to(torch.float64).view(-1, 1, 1)
    length = length.to(torch.float64).view(-1, 1, 1)
    scale = length / out_size
    support = scale.clamp(min=1.0)  # bilinear's support (1) widened by the downscaling factor
    centre = start + (torch.arange(out_size, dtype=torch.float64, device=start.device).view(1, -1, 1) + 0.5) * scale
    j = torch.arange(in_size, dtype=torch.float64, device=start.device).view(1, 1, -1)
    lo = torch.maximum(torch.floor(centre - support + 0.5), start)
    hi = torch.minimum(torch.floor(centre + support + 0.5), start + length)
    w = (1 - ((j + 0.5 - centre) / support).abs()).clamp(min=0) * ((j >= lo) & (j < hi))
    return (w / w.sum(-1, keepdim=True)).to(torch.float32)


def _apply(images: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, out_h, out_w) through the per-sample weights."""
    x = images.to(torch.float32)
    out = torch.einsum("nih,nchw,njw->ncij", wy.to(x.device), x, wx.to(x.device))
    return out.round_().clamp_(0, 255).to(torch.uint8)


def resized_crop(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: torch.Tensor, w: torch.Tensor, size: int
) -> torch.Tensor:
    """Each sample's box ``(top, left, h, w)`` resized to ``size`` x ``size``."""
    H, W = images.shape[-2:]
    return _apply(images, resample_weights(top, h, size, H), resample_weights(left, w, size, W))


def resize_center_crop(images: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """Short side to ``resize`` (the long one truncated, as torchvision), then the centre
    ``crop`` (offsets rounded as torchvision's CenterCrop): the evaluation geometry, batched.
    The resize of the whole image is computed only for the output pixels the crop keeps."""
    n, _, H, W = images.shape
    if H <= W:
        rh, rw = resize, int(resize * W / H)
    else:
        rh, rw = int(resize * H / W), resize
    top, left = int(round((rh - crop) / 2.0)), int(round((rw - crop) / 2.0))
    zero = torch.zeros(n)
    wy = resample_weights(zero, torch.full((n,), float(H)), rh, H)[:, top : top + crop]
    wx = resample_weights(zero, torch.full((n,), float(W)), rw, W)[:, left : left + crop]
    return _apply(images, wy, wx)


def crop_params(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    gen: torch.Generator,
    attempts: int = 10,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RandomResizedCrop's boxes for ``n`` samples (torchvision's rule, vectorised): up to
    ``attempts`` draws of an area fraction (uniform) and a log-uniform aspect ratio, the first
    that fits, at a uniform position; else the centre crop with the ratio clamped."""
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, attempts, generator=gen, dtype=torch.float64))
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(
        n, attempts, generator=gen, dtype=torch.float64
    )
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(1), fits.int().argmax(1), -1)
    u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    pick = first.clamp(min=0).view(-1, 1)
    h, w = h.gather(1, pick).squeeze(1), w.gather(1, pick).squeeze(1)
    fb_h, fb_w = _fallback(height, width, ratio)
    h = torch.where(first >= 0, h, torch.full_like(h, fb_h))
    w = torch.where(first >= 0, w, torch.full_like(w, fb_w))
    top = torch.where(first >= 0, torch.floor(u[:, 0] * (height - h + 1)), torch.floor((height - h) / 2))
    left = torch.where(first >= 0, torch.floor(u[:, 1] * (width - w + 1)), torch.floor((width - w) / 2))
    return top.long(), left.long(), h.long(), w.long()


def _fallback(height: int, width: int, ratio: tuple[float, float]) -> tuple[float, float]:
    """torchvision's centre crop when no draw fits."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return float(round(width / min(ratio))), float(width)
    if in_ratio > max(ratio):
        return float(height), float(round(height * max(ratio)))
    return float(height), float(width)
