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


def issues(e: ValidationError) -> list[tuple[list[str | int], str]]:
    """(location, message) per error, without pydantic's 'Value error, ' preamble."""
    out = []
    for err in e.errors():
        loc = [p for p in err["loc"] if not str(p).startswith("function-")]
        out.append((loc, str(err["msg"]).removeprefix("Value error, ")))
    return out


def describe(e: ValidationError | ValueError, where: str, prefix: str = "", first: bool = False) -> str:
    """The one format of every config error: ``<where>: key '<prefix><dotted key>': <message>``
    (no key part when the error is about the whole object)."""
    found = issues(e) if isinstance(e, ValidationError) else [([], str(e))]
    lines = []
    for loc, msg in found[:1] if first else found:
        key = ".".join(str(p) for p in [*([prefix] if prefix else []), *loc])
        lines.append(f"{where}: key '{key}': {msg}" if key else f"{where}: {msg}")
    return "\n".join(lines)


def validate(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe(e, where)) from None
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def check_part(schema: type[BaseModel], values: dict[str, Any], where: str, prefix: str) -> None:
    """Overrides of one config section (a row's or a profile's ``optim:``, ``data:``), validated
    alone (every field of the section has a default) where the file is read, in the one error
    format, not first when a run's whole config is built from them."""
    try:
        schema.model_validate(values)
    except ValidationError as e:
        raise ConfigError(describe(e, where, prefix, first=True)) from None
