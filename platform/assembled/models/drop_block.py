"""DropBlock (Ghiasi et al., NeurIPS 2018): drop contiguous square regions of feature maps.

Follows the official Assemble-ResNet op: block seeds are drawn on the valid region with rate
gamma = scale * (1 - keep_prob) * HW / bs^2 / ((H - bs + 1)(W - bs + 1)), dilated to blocks,
and the kept activations are rescaled by numel / kept. The official mask is shared by the
samples of a (per-GPU) batch; ``batch_shared`` keeps that behaviour. The block size is clipped
to the feature size so small-image profiles work (the official code would crash below 7x7).

``keep_prob`` is an attribute, not an argument, so a trainer can schedule it for every block
of a model with :func:`set_keep_prob` without knowing the architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DropBlock2d(nn.Module):
    def __init__(self, block_size: int = 7, gamma_scale: float = 1.0, batch_shared: bool = True) -> None:
        super().__init__()
        self.block_size = block_size
        self.gamma_scale = gamma_scale
        self.batch_shared = batch_shared
        self.keep_prob = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep_prob >= 1.0:
            return x
        n, c, h, w = x.shape
        bs = min(self.block_size, h, w)
        valid = (h - bs + 1) * (w - bs + 1)
        gamma = self.gamma_scale * (1.0 - self.keep_prob) * (h * w) / (bs * bs) / valid
        shape = (1 if self.batch_shared else n, c, h - bs + 1, w - bs + 1)
        seeds = (torch.rand(shape, device=x.device) < gamma).float()
        # a seed at (i, j) covers [i, i + bs) x [j, j + bs): pad by bs - 1 and max-pool
        blocks = F.max_pool2d(F.pad(seeds, (bs - 1,) * 4), bs, stride=1)
        keep = 1.0 - blocks
        scale = keep.numel() / (keep.sum() + 1e-8)
        return x * (keep * scale).to(x.dtype)

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, gamma_scale={self.gamma_scale}, keep_prob={self.keep_prob}"


def set_keep_prob(model: nn.Module, keep_prob: float) -> int:
    """Set keep_prob on every DropBlock of `model`; returns how many there are."""
    blocks = [m for m in model.modules() if isinstance(m, DropBlock2d)]
    for m in blocks:
        m.keep_prob = float(keep_prob)
    return len(blocks)
