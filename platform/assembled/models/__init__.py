"""The assembled model zoo: one configurable ResNet, MobileNet-V1 and EfficientNet references.

Exports load on first use: configs and names validate without importing torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "ModelConfig": ".config",
    "DropBlock2d": ".drop_block",
    "set_keep_prob": ".drop_block",
    "build_model": ".registry",
    "default_input_size": ".names",
    "list_models": ".names",
    "resolve_config": ".names",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
