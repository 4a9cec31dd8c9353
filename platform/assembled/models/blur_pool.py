"""Anti-aliased downsampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

A fixed binomial low-pass filter applied depthwise before subsampling, so aliasing of high
frequencies into the strided output is suppressed. Follows the official Assemble-ResNet op:
outer product of a binomial row ([1,2,1] for size 3, [1,4,6,4,1] for size 5), normalised to
sum 1, reflect padding of (k-1)//2 on every side, stride 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def binomial_filter(size: int) -> torch.Tensor:
    """2-D normalised binomial kernel of the given side length."""
    if not 2 <= size <= 7:
        raise ValueError(f"blur filter size must be in 2..7, got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


class BlurPool2d(nn.Module):
    """Depthwise binomial blur followed by subsampling with `stride`."""

    def __init__(self, channels: int, filter_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.pad = (filter_size - 1) // 2
        self.register_buffer(
            "kernel",
            binomial_filter(filter_size).expand(channels, 1, filter_size, filter_size).clone(),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            # reflect needs a side longer than the pad; tiny maps (CPU profiles) fall back to replicate
            mode = "reflect" if min(x.shape[-2:]) > self.pad else "replicate"
            x = F.pad(x, (self.pad,) * 4, mode=mode)
        return F.conv2d(x, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, filter_size={self.kernel.shape[-1]}, stride={self.stride}"
