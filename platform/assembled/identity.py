"""A config's identity, declared on its schema: what a run's config hash digests, so that a
finished run is found again and never trained twice. Every field is part of it unless its
``Field`` says otherwise:

- ``NEVER``: where or how fast a run goes (device, threads, workers), or a local path;
- ``UNLESS_DEFAULT``: a field added after runs were made; at its default it is left out, so those
  runs keep their hashes (tests/data/config_hashes.json holds every shipped table and profile's);
- ``only_with(flag)``: meaningful only when a sibling flag is on (AutoAugment's policy).

Torch-free: configs, plans and reports read it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

NEVER = {"identity": "never"}
UNLESS_DEFAULT = {"identity": "unless_default"}


def only_with(flag: str) -> dict[str, Any]:
    return {"identity": {"only_with": flag}}


def identity(config: BaseModel) -> dict[str, Any]:
    """The fields of ``config`` that make its identity, as JSON values, nested configs by their
    own rules."""
    out: dict[str, Any] = {}
    for name, info in type(config).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rule = extra.get("identity")
        value = getattr(config, name)
        if rule == "never":
            continue
        if rule == "unless_default" and value == info.get_default(call_default_factory=True):
            continue
        if isinstance(rule, dict) and not getattr(config, rule["only_with"]):
            continue
        if isinstance(value, BaseModel):
            out[name] = identity(value)
        else:
            out[name] = config.model_dump(mode="json", include={name})[name]
    return out
