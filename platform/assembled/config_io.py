"""YAML files and ``--set key=value`` overrides -> validated configs, with errors that name the
file and the dotted key at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A bad configuration; the message names file and key."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = d.get(p)
        if isinstance(nxt, str) and p == "model":  # "model: resnet50" -> {"name": "resnet50"}
            nxt = {"name": nxt}
        if not isinstance(nxt, dict):
            nxt = {}
        d[p] = nxt
        d = nxt
    d[parts[-1]] = value


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        set_dotted(d, key.strip(), yaml.safe_load(raw))
    return d


def describe(e: ValidationError, where: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        lines.append(f"{where}: key '{key}': {err['msg']}")
    return "\n".join(lines)


def validate(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe(e, where)) from None
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None
