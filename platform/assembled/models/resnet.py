"""ResNet v1 (He et al. 2016) with the stride on the 3x3 conv (ResNet-B) and every tweak a switch.

ResNet-C/D (He et al. 2019, "Bag of Tricks") are ``deep_stem`` and ``avg_down``. SE, SK,
anti-aliasing, DropBlock and zero-gamma come from :class:`ModelConfig`. DropBlock sits in
stages 3 and 4 with the official gamma scales 0.25 and 1.0.
"""

from __future__ import annotations

import torch
from torch import nn

from .bottleneck import EXPANSION, block_layer
from .config import ModelConfig
from .drop_block import DropBlock2d
from .init import init_weights
from .layers import resnet_stem

DROPBLOCK_STAGE_SCALE = {2: 0.25, 3: 1.0}  # stage index (0-based) -> gamma scale


def drop_factory_for(stage: int, cfg: ModelConfig):
    if not cfg.dropblock or stage not in DROPBLOCK_STAGE_SCALE:
        return None
    scale = DROPBLOCK_STAGE_SCALE[stage]
    return lambda: DropBlock2d(cfg.dropblock_size, scale)


class ResNet(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int = 1000) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem, cin = resnet_stem(cfg)
        style = "resnet_d" if cfg.avg_down else "plain"
        stages = []
        strides = (1, 2, 2, cfg.last_stride)
        for i, (blocks, stride) in enumerate(zip(cfg.block_counts(), strides, strict=True)):
            width = cfg.width * 2**i
            unstrided = i == 3 and stride == 1
            stages.append(
                block_layer(cin, width, blocks, stride, cfg, style, drop_factory_for(i, cfg), True, unstrided)
            )
            cin = width * EXPANSION
        self.stages = nn.Sequential(*stages)
        self.num_features = cin
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))
