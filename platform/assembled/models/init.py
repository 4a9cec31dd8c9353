"""Weight initialisation of the official TF code, and zero-gamma.

Convs: TF1 variance scaling (fan_in, scale 1, truncated normal at +-2 std, std corrected by
0.8796 for the truncation). FC: Glorot uniform, bias 0. BN: gamma 1, beta 0, except the last BN
of a residual block (gamma 0) when zero-gamma is on, so every block starts as the identity.
"""

from __future__ import annotations

import math

from torch import nn

TRUNC_CORRECTION = 0.87962566103423978


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(1.0 / fan_in) / TRUNC_CORRECTION
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 0.0 if getattr(m, "zero_gamma", False) else 1.0)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
