"""Mixup (Zhang et al., ICLR 2018) with a per-example lambda ~ Beta(alpha, alpha), both types of
the Assemble-ResNet paper (Table 4).

- type 1: two independent batches x1, x2 -> lambda * x1 + (1 - lambda) * x2 (the caller draws
  2B images per step).
- type 2: one batch split in halves -> [mix(x1, x2), mix(x1, reversed x2)], every image used twice.

Targets are probability vectors (one-hot labels, teacher probabilities) mixed with the same
lambdas as the images.
"""

from __future__ import annotations

import torch


def sample_lambda(n: int, alpha: float, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    if generator is None:
        return beta.sample((n,)).to(device)
    # Beta from two Gammas through a seeded generator keeps runs reproducible
    u = torch._standard_gamma(torch.full((2, n), float(alpha)), generator=generator)
    lam = u[0] / (u[0] + u[1])
    if device.type == "cuda":  # pinned, so the copy does not stall the step
        return lam.pin_memory().to(device, non_blocking=True)
    return lam.to(device)


def _mix(a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    lam = lam.view(-1, *([1] * (a.dim() - 1))).to(a.dtype)
    return lam * a + (1 - lam) * b


def mixup_pairs(tensors: list[torch.Tensor], lam: torch.Tensor, mixup_type: int) -> list[torch.Tensor]:
    """Mix every tensor of ``tensors`` (images, targets ...) along dim 0 the same way.

    Type 1 expects 2B rows and returns B; type 2 expects B (even) rows and returns B; ``lam``
    has one entry per output row.
    """
    half = tensors[0].shape[0] // 2
    if mixup_type == 1:
        return [_mix(t[:half], t[half : 2 * half], lam) for t in tensors]
    if mixup_type == 2:
        out = []
        for t in tensors:
            a, b = t[:half], t[half : 2 * half]
            out.append(torch.cat([_mix(a, b, lam[:half]), _mix(a, b.flip(0), lam[half:])]))
        return out
    raise ValueError(f"mixup type must be 1 or 2, got {mixup_type}")
