"""KD teachers that are not rows of the table being run: a row of another table (``table05:E6``,
or ``other.yaml:T`` beside this file) or a model config (``kd: {model: resnet152}``).

Each becomes an extra, reference-marked row of this invocation, trained in this table's
experiment before its students (or found finished there by config hash, like any row), so its
logits are computed once and shared by every student that names it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from ..config_io import ConfigError, describe
from ..models.names import resolve_config
from .spec import PaperNumbers, ResolvedRow, load_table, table_path


def other_table(spec: str, here: Path, ablations_dir: Path) -> Path:
    """``5`` / ``table05`` -> ablations/table05.yaml; another name is a file beside ``here``."""
    if spec.isdigit() or (spec.startswith("table") and spec[5:].isdigit()):
        return table_path(spec, ablations_dir)
    return here.parent / spec


def external_teachers(
    path: Path, rows: list[ResolvedRow], ablations_dir: Path
) -> tuple[list[ResolvedRow], dict[str, str]]:
    """Extra teacher rows, and the teacher row id of every KD student."""
    extra: dict[str, ResolvedRow] = {}
    teacher_of: dict[str, str] = {}
    for r in rows:
        if r.kd is None:
            continue
        where = f"{path}: row {r.id}: key 'kd"
        if r.kd.model is not None:
            try:
                resolve_config(r.kd.model)
            except (ValueError, ValidationError) as e:
                raise ConfigError(describe(e, f"{path}: row {r.id}", "kd.model", first=True)) from None
            digest = hashlib.sha256(json.dumps(r.kd.model, sort_keys=True).encode()).hexdigest()[:8]
            rid = f"teacher-{digest}"
            extra.setdefault(
                rid,
                ResolvedRow(
                    id=rid,
                    title=f"KD teacher {r.kd.model if isinstance(r.kd.model, str) else 'model config'}",
                    model=r.kd.model,
                    reg={},
                    optim={},
                    kd=None,
                    autoaugment=False,
                    epochs=r.epochs,
                    input_size=224,
                    train_size=224,
                    reference=True,
                    paper=PaperNumbers(),
                ),
            )
            teacher_of[r.id] = rid
        elif ":" in (r.kd.row or ""):
            spec, row_id = r.kd.row.rsplit(":", 1)
            other = other_table(spec, path, ablations_dir)
            if not other.exists():
                raise ConfigError(f"{where}.row': teacher table {other} does not exist")
            _, other_rows = load_table(other)
            match = next((x for x in other_rows if x.id == row_id), None)
            if match is None:
                raise ConfigError(f"{where}.row': {other} has no row {row_id}")
            if match.kd is not None:
                raise ConfigError(f"{where}.row': {other.name} row {row_id} distils itself; name its teacher instead")
            rid = f"{other.stem}:{row_id}"
            title = f"{match.title or row_id} (teacher from {other.name})"
            # its own reference flag: it decides the row's training size, so its identity stays its table's
            extra.setdefault(rid, match.model_copy(update={"id": rid, "title": title}))
            teacher_of[r.id] = rid
        else:
            teacher_of[r.id] = r.kd.row
    return list(extra.values()), teacher_of
