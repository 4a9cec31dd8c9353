"""ImageNet-P-style perturbation sequences (Hendrycks & Dietterich 2019), generated in torch.

Each sequence starts at the clean image. Noise sequences (gaussian_noise, shot_noise) are 30
independent noise draws; the others change smoothly frame to frame (blur strength, snow
drift, brightness, translation by one pixel per frame over 41 frames, rotation, tilt,
scale). Sequence lengths follow ImageNet-P (31 frames, translate 41); magnitudes are ours,
chosen to be small per step as in ImageNet-P at difficulty 1, scaled with image size.
"""

from __future__ import annotations

import math

import torch

from .corruptions import ops

PERTURBATIONS = (
    "gaussian_noise",
    "shot_noise",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "translate",
    "rotate",
    "tilt",
    "scale",
)
NOISE = ("gaussian_noise", "shot_noise")
IMPLEMENTATION = 2  # bump whenever the sequences change (see corruptions.IMPLEMENTATION)


def frames_of(name: str) -> int:
    return 41 if name == "translate" else 31


@torch.no_grad()
def sequence(images: torch.Tensor, name: str, seed: int = 0) -> torch.Tensor:
    """Frames x N x 3 x H x W, frame 0 the clean images."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    x = images.float()
    n, _, h, w = x.shape
    s = min(h, w) / 224
    g = torch.Generator().manual_seed(ops.seed_from(seed, "p", name))
    steps = frames_of(name)
    out = [x]
    if name in NOISE:
        for _ in range(steps - 1):
            if name == "gaussian_noise":
                out.append(x + torch.randn(x.shape, generator=g).to(x) * 0.03)
            else:
                out.append(ops.scaled_poisson(x, 60, g))
        return torch.stack(out).clamp(0, 1)
    angle = torch.rand(n, generator=g) * 90 - 45
    snow = None
    if name == "snow":
        snow = (torch.randn(n, 1, h, w, generator=g) * 0.3 + 0.2).to(x)
        snow = torch.where(snow < 0.6, torch.zeros_like(snow), snow)
    for t in range(1, steps):
        f = t / (steps - 1)
        if name == "motion_blur":
            y = ops.motion_blur(x, max(1.0, 6 * f * s * 224 / 64) if s < 1 else 6 * f, 2 * f + 0.5, angle)
        elif name == "zoom_blur":
            y = ops.zoom_sum(x, [1 + z for z in torch.linspace(0, 0.06 * f, 4).tolist()]) / 4
        elif name == "snow":
            layer = ops.shift(snow, torch.zeros(n), torch.full((n,), float(t) * max(1.0, 2 * s)))
            y = 0.9 * x + 0.1 * torch.maximum(x, ops.grayscale(x) * 1.5 + 0.5) + layer
        elif name == "brightness":
            hsv = ops.rgb_to_hsv(x.clamp(0, 1))
            hsv[:, 2] = (hsv[:, 2] + 0.2 * f).clamp(0, 1)
            y = ops.hsv_to_rgb(hsv)
        elif name == "translate":
            d = torch.full((n,), float(t - (steps - 1) / 2) * max(1.0, s))
            y = ops.shift(x, d, torch.zeros(n))
        else:
            theta = torch.zeros(n, 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = 1.0
            if name == "rotate":
                a = ops.radians(15 * (2 * f - 1))
                theta[:, 0, 0], theta[:, 0, 1] = math.cos(a), -math.sin(a)
                theta[:, 1, 0], theta[:, 1, 1] = math.sin(a), math.cos(a)
            elif name == "scale":
                theta[:, 0, 0] = theta[:, 1, 1] = 1 + 0.4 * f
            else:  # tilt: a growing perspective-like shear about the horizontal axis
                theta[:, 0, 1] = 0.15 * (2 * f - 1)
                theta[:, 1, 1] = 1 - 0.1 * abs(2 * f - 1)
            y = ops.affine(x, theta.to(x.device))
        out.append(y)
    return torch.stack(out).clamp(0, 1)
