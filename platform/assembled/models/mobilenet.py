"""MobileNet-V1 (Howard et al. 2017), optionally with SE after each pointwise conv (Table 9).

Depthwise-separable blocks; DropBlock, when on, follows the pointwise BNs of the 14x14 blocks
(5-10 at 224, gamma scale 0.25) and the 7x7 blocks (11-12, scale 1.0), mirroring the ResNet's
stages 3 and 4 (the official code has no MobileNet; the paper says DropBlock as for ResNet).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .drop_block import DropBlock2d
from .init import init_weights
from .squeeze_excite import SqueezeExcite

# (output channels, stride) of the 13 depthwise-separable blocks
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
# block index -> DropBlock gamma scale: the 14x14 stage (from its strided first block) and the 7x7 stage
DROPBLOCK_SCALE = {**dict.fromkeys(range(5, 11), 0.25), 11: 1.0, 12: 1.0}


class MobileNetV1(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int = 1000) -> None:
        super().__init__()
        m = cfg.bn_momentum

        def ch(c: int) -> int:
            return max(8, int(c * cfg.width_mult))

        cin = ch(32)
        layers: list[nn.Module] = [
            nn.Conv2d(3, cin, 3, 1 if cfg.small_input else 2, 1, bias=False),
            nn.BatchNorm2d(cin, momentum=m),
            nn.ReLU(inplace=True),
        ]
        for i, (c, s) in enumerate(BLOCKS):
            cout = ch(c)
            drop = (
                [DropBlock2d(cfg.dropblock_size, DROPBLOCK_SCALE[i])] if cfg.dropblock and i in DROPBLOCK_SCALE else []
            )
            layers += [
                nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False),
                nn.BatchNorm2d(cin, momentum=m),
                nn.ReLU(inplace=True),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout, momentum=m),
                *drop,
                nn.ReLU(inplace=True),
            ]
            if cfg.se:
                layers.append(SqueezeExcite(cout, cfg.se_reduction))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.num_features = cin
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))
