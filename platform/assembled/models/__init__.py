"""The assembled model zoo: one configurable ResNet, MobileNet-V1 and EfficientNet references."""

from .config import ModelConfig
from .drop_block import DropBlock2d, set_keep_prob
from .registry import build_model, default_input_size, list_models, resolve_config

__all__ = [
    "DropBlock2d",
    "ModelConfig",
    "build_model",
    "default_input_size",
    "list_models",
    "resolve_config",
    "set_keep_prob",
]
