"""``build_model``: a name, a dict of switches or a config -> an untrained network (the
names themselves live in ``names``, torch-free)."""

from __future__ import annotations

from typing import Any

from torch import nn

from .big_little import BigLittleResNet
from .config import ModelConfig
from .efficientnet import build_efficientnet
from .mobilenet import MobileNetV1
from .names import REGISTRY, default_input_size, list_models, resolve_config
from .resnet import ResNet

__all__ = ["REGISTRY", "build_model", "default_input_size", "list_models", "resolve_config"]


def build_model(spec: str | dict[str, Any] | ModelConfig, num_classes: int = 1000) -> nn.Module:
    cfg = resolve_config(spec)
    if cfg.arch == "efficientnet":
        return build_efficientnet(cfg, num_classes)
    if cfg.arch == "mobilenet_v1":
        return MobileNetV1(cfg, num_classes)
    if cfg.big_little:
        return BigLittleResNet(cfg, num_classes)
    return ResNet(cfg, num_classes)
