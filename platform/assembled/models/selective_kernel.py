"""Selective Kernel convolution (Li et al., "Selective Kernel Networks", CVPR 2019).

Two paths see the same input; a softmax over paths, per channel, computed from the pooled sum
of the paths, weighs them. Two flavours:

- ``doubled_3x3`` (the Assemble-ResNet paper's modification, Table 2 C3): a single dense 3x3
  convolution with 2f output channels whose halves are the two paths.
- ``3x3_5x5`` (the original, Table 2 C2): a 3x3 and a "5x5" path, which SKNet builds as a 3x3
  with dilation 2 (the receptive field of a 5x5 at the cost of a 3x3; the paper's C2/C3
  throughput, 326 vs 382 img/s, fits this). ``dense_5x5=True`` builds a real 5x5 instead.

The attention width is max(f / r, min_width) (official code: r=2, L=32). Nothing follows the
weighted sum: no BN or ReLU, as in the official implementation.
"""

from __future__ import annotations

import torch
from torch import nn


class SelectiveKernel(nn.Module):
    def __init__(
        self,
        channels: int,
        stride: int = 1,
        kind: str = "doubled_3x3",
        reduction: int = 2,
        min_width: int = 32,
        bn_momentum: float = 0.1,
        dense_5x5: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("doubled_3x3", "3x3_5x5"):
            raise ValueError(f"unknown selective kernel kind {kind!r}")
        self.channels = channels
        self.kind = kind
        if kind == "doubled_3x3":
            self.paths = nn.Sequential(
                nn.Conv2d(channels, 2 * channels, 3, stride, 1, bias=False),
                nn.BatchNorm2d(2 * channels, momentum=bn_momentum),
                nn.ReLU(inplace=True),
            )
        else:
            # (kernel, dilation) of the two paths; padding keeps the size
            second = (5, 1) if dense_5x5 else (3, 2)
            self.paths = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(channels, channels, k, stride, d * (k // 2), dilation=d, bias=False),
                    nn.BatchNorm2d(channels, momentum=bn_momentum),
                    nn.ReLU(inplace=True),
                )
                for k, d in ((3, 1), second)
            )
        width = max(channels // reduction, min_width)
        self.fc_reduce = nn.Sequential(
            nn.Conv2d(channels, width, 1, bias=False),
            nn.BatchNorm2d(width, momentum=bn_momentum),
            nn.ReLU(inplace=True),
        )
        self.fc_expand = nn.Conv2d(width, 2 * channels, 1, bias=False)

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The two paths stacked: N x 2 x f x H x W."""
        if self.kind == "doubled_3x3":
            y = self.paths(x)
            return y.view(y.shape[0], 2, self.channels, *y.shape[-2:])
        return torch.stack([p(x) for p in self.paths], dim=1)

    def attention(self, paths: torch.Tensor) -> torch.Tensor:
        """Per-channel softmax weights over the paths: N x 2 x f x 1 x 1, summing to 1 over dim 1."""
        pooled = paths.sum(1).mean((2, 3), keepdim=True)
        logits = self.fc_expand(self.fc_reduce(pooled))
        return logits.view(logits.shape[0], 2, self.channels, 1, 1).softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = self.branches(x)
        return (paths * self.attention(paths)).sum(1)
