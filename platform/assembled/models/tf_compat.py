"""Two pooling ops as the official TF graph computes them (``ModelConfig.official_tf``), so
weights ported from an official checkpoint give the same logits. Off by default: they are
quirks of TF's padding, not techniques of the paper.

- TF 'SAME' pooling pads ``total = max((ceil(H / s) - 1) * s + k - H, 0)`` with the smaller
  half before: the stem's 3x3 / 2 max-pool on an even map pads 0 before and 1 after, where
  PyTorch's ``MaxPool2d(3, 2, 1)`` pads 1 on both sides (same size, windows shifted by one).
- The official ResNet-D shortcut keeps its 2x2 average pool at stride 1 in stage 1 ('SAME':
  one row and column of padding after, divided by the valid count); standard ResNet-D has none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameMaxPool2d(nn.Module):
    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_pads(x.shape[-2], self.kernel, self.stride)
        left, right = same_pads(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=TF SAME"


class SameAvgPool2x2(nn.Module):
    """2x2 average pool at stride 1 with TF 'SAME' padding (after), valid elements only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1)
        count = F.avg_pool2d(F.pad(ones, (0, 1, 0, 1)), 2, 1)
        return total / count
