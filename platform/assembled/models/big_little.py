"""Big-Little Net ResNet (Chen et al., ICLR 2019), as the official Assemble-ResNet builds it.

Stages 1-3 run a "big" branch of n-1 blocks at half resolution and a "little" branch of
max(1, n//beta - 1) blocks of width f/alpha at full resolution; the big branch is upsampled
(nearest), the little one projected to 4f, the two added, and one merge block (stride 2, 2, 1)
follows. Stage 4 is an ordinary stage. The 7x7 stem is kept (no deep stem with BL) and is
followed by the BL stem module instead of a max-pool; strided shortcuts use a 3x3 average pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .bottleneck import EXPANSION, block_layer
from .config import ModelConfig
from .init import init_weights
from .layers import conv_bn
from .resnet import drop_factory_for

MERGE_STRIDES = (2, 2, 1)


class BigLittleStem(nn.Module):
    """Replaces the stem max-pool: a strided big conv plus a two-conv little path, merged."""

    def __init__(self, w: int, alpha: int, cfg: ModelConfig) -> None:
        super().__init__()
        lw = max(1, w // alpha)
        s = 1 if cfg.small_input else 2
        self.big = conv_bn(w, w, 3, s, cfg, relu=False)
        self.little = nn.Sequential(
            *conv_bn(w, lw, 3, 1, cfg), *conv_bn(lw, lw, 3, s, cfg), *conv_bn(lw, w, 1, 1, cfg, relu=False)
        )
        self.fuse = conv_bn(w, w, 1, 1, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(F.relu(self.big(x) + self.little(x)))


class BigLittleStage(nn.Module):
    def __init__(self, cin: int, width: int, blocks: int, merge_stride: int, cfg: ModelConfig, drop_factory) -> None:
        super().__init__()
        cout = width * EXPANSION
        little_width = max(1, width // cfg.bl_alpha)
        self.big = block_layer(cin, width, max(1, blocks - 1), 2, cfg, "big_little", drop_factory, last_relu=False)
        self.little = block_layer(
            cin, little_width, max(1, blocks // cfg.bl_beta - 1), 1, cfg, "big_little", drop_factory
        )
        self.little_expand = conv_bn(little_width * EXPANSION, cout, 1, 1, cfg, relu=False)
        self.merge = block_layer(cout, width, 1, merge_stride, cfg, "big_little", drop_factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        little = self.little_expand(self.little(x))
        # nearest x2 as the official code; sizing to the little branch also serves odd maps
        big = F.interpolate(self.big(x), size=little.shape[-2:], mode="nearest")
        return self.merge(F.relu(big + little))


class BigLittleResNet(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int = 1000) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        stem_k, stem_s = (3, 1) if cfg.small_input else (7, 2)
        self.stem = nn.Sequential(*conv_bn(3, w, stem_k, stem_s, cfg), BigLittleStem(w, cfg.bl_alpha, cfg))
        counts = cfg.block_counts()
        stages: list[nn.Module] = []
        cin = w
        for i in range(3):
            width = w * 2**i
            stages.append(BigLittleStage(cin, width, counts[i], MERGE_STRIDES[i], cfg, drop_factory_for(i, cfg)))
            cin = width * EXPANSION
        width = w * 8
        unstrided = cfg.last_stride == 1
        stages.append(
            block_layer(
                cin, width, counts[3], cfg.last_stride, cfg, "big_little", drop_factory_for(3, cfg), True, unstrided
            )
        )
        self.stages = nn.Sequential(*stages)
        self.num_features = width * EXPANSION
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))
