"""Squeeze-and-Excitation (Hu et al., CVPR 2018).

Channel attention: global average pool, bottleneck of width C/r, sigmoid gate. As in the
official Assemble-ResNet code the two 1x1 convolutions carry no bias; the width has a floor
of 1 so tiny test widths still build.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)
