"""EfficientNet B0-B7 (Tan & Le 2019) from torchvision, as reference rows of Table 7.

Built untrained (no weights can be downloaded here); ``INPUT_SIZE`` is each variant's native
resolution, which the tables use as the row's input size. ``width_mult`` / ``depth_mult``
shrink a variant on top of its own compound scaling, so a CPU profile keeps B0 < B1 < ... < B7
while every row fits its budget; at 1.0 the model is torchvision's own (BN momentum included).
"""

from __future__ import annotations

from functools import partial

import torchvision
from torch import nn
from torchvision.models.efficientnet import EfficientNet, MBConvConfig

from .config import ModelConfig
from .names import EFFICIENTNET_INPUT

INPUT_SIZE = EFFICIENTNET_INPUT
# (width, depth, dropout) of each variant, as in the EfficientNet paper and torchvision
COMPOUND = {
    "b0": (1.0, 1.0, 0.2),
    "b1": (1.0, 1.1, 0.2),
    "b2": (1.1, 1.2, 0.3),
    "b3": (1.2, 1.4, 0.3),
    "b4": (1.4, 1.8, 0.4),
    "b5": (1.6, 2.2, 0.4),
    "b6": (1.8, 2.6, 0.5),
    "b7": (2.0, 3.1, 0.5),
}
# B0's stages: expand ratio, kernel, stride, in, out, repeats
_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
           (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]  # fmt: skip


def build_efficientnet(cfg: ModelConfig, num_classes: int = 1000) -> nn.Module:
    if cfg.width_mult == 1.0 and cfg.depth_mult == 1.0:
        factory = getattr(torchvision.models, f"efficientnet_{cfg.variant}")
        return factory(weights=None, num_classes=num_classes)
    width, depth, dropout = COMPOUND[cfg.variant]
    conf = partial(MBConvConfig, width_mult=width * cfg.width_mult, depth_mult=depth * cfg.depth_mult)
    stages = [conf(*s) for s in _STAGES]
    # torchvision gives B5-B7 BN momentum 0.01 (TF's 0.99), which needs thousands of steps to settle;
    # a shrunken model trains on a short budget, so it takes the config's (0.1 by default)
    eps = 1e-3 if cfg.variant in ("b5", "b6", "b7") else 1e-5
    norm = partial(nn.BatchNorm2d, eps=eps, momentum=cfg.bn_momentum)
    return EfficientNet(stages, dropout, num_classes=num_classes, norm_layer=norm)
