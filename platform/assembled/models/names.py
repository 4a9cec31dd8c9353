"""Names -> configurations. A name is shorthand for a dict of switches; both build through
``build_model``, so a YAML row can say ``resnet50d`` or spell the switches out, or both (a name
with overrides). Torch-free: configs are validated and hashed without importing the models."""

from __future__ import annotations

from typing import Any

from .config import ModelConfig

# each EfficientNet variant's native resolution (the tables' input size for its row)
EFFICIENTNET_INPUT = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528, "b7": 600}

_D = {"deep_stem": True, "avg_down": True}
_SK = {"sk": "doubled_3x3"}
_BL = {"big_little": True}
_AA = {"aa_filter": 3, "aa_sconv": True}

# name -> (switches, native input size used by the paper's tables)
REGISTRY: dict[str, tuple[dict[str, Any], int]] = {
    "resnet50": ({"depth": 50}, 224),
    "resnet101": ({"depth": 101}, 224),
    "resnet152": ({"depth": 152}, 224),
    "resnet50d": ({"depth": 50, **_D}, 224),
    "se_resnet50d": ({"depth": 50, **_D, "se": True}, 224),
    "resnet50d_sk": ({"depth": 50, **_D, **_SK}, 224),
    "resnet50d_sk_bl": ({"depth": 50, **_SK, **_BL}, 256),
    "assemble_resnet50": ({"depth": 50, **_SK, **_BL, **_AA, "dropblock": True}, 256),
    "assemble_resnet152": (
        {"depth": 152, **_SK, **_BL, **_AA, "dropblock": True, "bl_alpha": 1, "bl_beta": 2},
        256,
    ),
    "mobilenet_v1": ({"arch": "mobilenet_v1"}, 224),
    "se_mobilenet_v1": ({"arch": "mobilenet_v1", "se": True}, 224),
    **{f"efficientnet_{v}": ({"arch": "efficientnet", "variant": v}, size) for v, size in EFFICIENTNET_INPUT.items()},
}


def list_models() -> list[str]:
    return list(REGISTRY)


def resolve_config(spec: str | dict[str, Any] | ModelConfig) -> ModelConfig:
    """Turn a name, a dict (optionally with ``name`` plus overrides) or a config into a config."""
    if isinstance(spec, ModelConfig):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    name = spec.get("name")
    if name is not None and name not in REGISTRY:  # said plainly here, before pydantic wraps it
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(REGISTRY)}")
    return ModelConfig.model_validate(spec)


def default_input_size(spec: str | dict[str, Any] | ModelConfig) -> int:
    """The paper's evaluation size for a registered name (224 when unknown)."""
    cfg = resolve_config(spec)
    if cfg.arch == "efficientnet":
        return EFFICIENTNET_INPUT[cfg.variant]
    return 256 if cfg.big_little else 224
