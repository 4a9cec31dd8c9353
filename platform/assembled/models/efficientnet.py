"""EfficientNet B0-B7 (Tan & Le 2019) from torchvision, as reference rows of Table 7.

Built untrained (no weights can be downloaded here); ``INPUT_SIZE`` is each variant's native
resolution, which the tables use as the row's input size.
"""

from __future__ import annotations

import torchvision
from torch import nn

from .config import ModelConfig

INPUT_SIZE = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528, "b7": 600}


def build_efficientnet(cfg: ModelConfig, num_classes: int = 1000) -> nn.Module:
    factory = getattr(torchvision.models, f"efficientnet_{cfg.variant}")
    return factory(weights=None, num_classes=num_classes)
