"""The YAML schema of an ablation table: rows with the paper's id, switches, budget and numbers.

A row may inherit another row of the same table (``base: E3``) and change only what differs,
so each YAML line says what the paper's row adds. Every key is checked before anything runs;
errors name the file, the row and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config_io import ConfigError, check_part, describe, issues, read_yaml
from ..models.names import resolve_config
from ..training.config import OptimConfig, RegConfig, check_switches


class PaperNumbers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top1: float | None = None
    mce: float | None = None
    mfr: float | None = None
    throughput: float | None = None
    flops: float | None = Field(None, description="GMACs (the paper's 'FLOPS')")
    params: float | None = Field(None, description="millions")
    recall_at_1: float | None = Field(None, description="image retrieval (Tables 12, 13)")
    backbone_top1: float | None = Field(None, description="transfer tables: the backbone's ImageNet top-1")


class Teacher(BaseModel):
    """Knowledge-distillation teacher: a row (``E8`` or ``table07:E8``) or a model config."""

    model_config = ConfigDict(extra="forbid")

    row: str | None = None
    model: dict[str, Any] | str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_temperature(cls, data: Any) -> Any:
        if isinstance(data, dict) and "temperature" in data:  # the name before there was one name
            raise ValueError(
                "the KD temperature is the row's reg.kd_temperature (the name in configs, searches and "
                "best.yaml too): write kd: {row: ...}, reg: {kd_temperature: T}"
            )
        return data

    @model_validator(mode="after")
    def _one(self) -> Teacher:
        if (self.row is None) == (self.model is None):
            raise ValueError("a teacher names exactly one of 'row' or 'model'")
        return self


class Backbone(BaseModel):
    """A transfer row's starting weights: another table's row (trained first if it has no finished
    run, exactly once however many rows use it) or a checkpoint file of the assembled trainer."""

    model_config = ConfigDict(extra="forbid")

    row: str | None = Field(None, description="'table07:E11' (or 'E3' for a row of this table)")
    checkpoint: str | None = Field(None, description="a checkpoint path (relative to the table file)")

    @model_validator(mode="after")
    def _one(self) -> Backbone:
        if (self.row is None) == (self.checkpoint is None):
            raise ValueError("a backbone names exactly one of 'row' or 'checkpoint'")
        return self


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str = ""
    base: str | None = Field(None, description="inherit every setting of this row, then apply this one's")
    model: dict[str, Any] | str | None = None
    reg: dict[str, Any] | None = None
    optim: dict[str, Any] | None = Field(None, description="OptimConfig overrides on top of the profile's")
    kd: Teacher | None = None
    autoaugment: bool | Literal["official", "good", "torchvision"] | None = Field(
        None,
        description="true = the official code's ImageNet policy (the paper's rows); good = its CIFAR-10 policy "
        "(FGVC fine-tuning); or torchvision's",
    )
    epochs: int | None = Field(None, ge=1, description="the paper's epochs (scaled by the profile)")
    input_size: int | None = Field(None, ge=16, description="the paper's evaluation size")
    train_size: int | None = Field(None, ge=16, description="the paper's training crop (default 224)")
    reference: bool = Field(False, description="a reference model (e.g. EfficientNet), not a stacking step")
    vs: str | None = Field(
        None,
        description="judge this row against that row instead of its base (stacked) or the baseline; 'none': not "
        "judged (a row that starts another dataset inherits settings, not a comparison)",
    )
    paper: PaperNumbers = PaperNumbers()
    search: dict[str, Any] | None = Field(None, description="Optuna search space around this row (assembled search)")
    backbone: Backbone | None = Field(None, description="fine-tune from this backbone (Tables 10-13)")
    dataset: str | None = Field(None, description="the data a transfer row trains on: a key of the profile's datasets")
    data: dict[str, Any] | None = Field(None, description="DataConfig overrides (e.g. split: zero_shot)")
    head: dict[str, Any] | None = Field(None, description="HeadConfig: the retrieval embedding and its loss")
    transfer: dict[str, Any] | None = Field(None, description="TransferConfig overrides (bn_stats, bn_momentum)")


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: int | str
    title: str
    schedule: Literal["cosine", "piecewise"] = "cosine"
    baseline: str | None = Field(None, description="row whose errors normalise mCE/mFR off ImageNet")
    kind: Literal["stacked", "alternatives"] = Field(
        "alternatives",
        description="stacked: each row adds to its base row (else the previous row) and is judged against it; "
        "alternatives: every row is judged against the baseline",
    )
    repeats: int | None = Field(None, ge=1, le=100, description="seeds per row (default: the profile's)")
    task: Literal["classification", "fgvc", "retrieval"] = Field(
        "classification", description="what the table measures: top-1/mCE/mFR, FGVC top-1/mCE, or Recall@K"
    )
    rows: list[Row]


class ResolvedRow(BaseModel):
    """A row with inheritance applied: everything needed to build its training config."""

    id: str
    title: str
    base: str | None = None
    model: dict[str, Any] | str  # a transfer row: overrides of its backbone's model ({} for none)
    reg: dict[str, Any]
    optim: dict[str, Any]
    kd: Teacher | None
    autoaugment: bool | Literal["official", "good", "torchvision"]
    epochs: int
    input_size: int
    train_size: int
    reference: bool
    paper: PaperNumbers
    vs: str | None = None  # the row's own (not inherited): what it is judged against
    search: dict[str, Any] | None = None  # the row's own (not inherited)
    backbone: Backbone | None = None
    dataset: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    head: dict[str, Any] = Field(default_factory=dict)
    transfer: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_transfer(self) -> bool:
        return self.backbone is not None


def _where(path: Path, row: str | None, key: str) -> str:
    return f"{path}: row {row}: key '{key}'" if row else f"{path}: key '{key}'"


def load_table(path: str | Path) -> tuple[Table, list[ResolvedRow]]:
    path = Path(path)
    data = read_yaml(path)
    raw_rows = data.get("rows") if isinstance(data.get("rows"), list) else []
    try:
        table = Table.model_validate(data)
    except ValidationError as e:
        lines = []
        for loc, msg in issues(e):
            row = None
            if len(loc) >= 2 and loc[0] == "rows" and isinstance(loc[1], int):
                idx = loc[1]
                row = (
                    raw_rows[idx].get("id", f"#{idx + 1}")
                    if idx < len(raw_rows) and isinstance(raw_rows[idx], dict)
                    else f"#{idx + 1}"
                )
                loc = loc[2:]
            lines.append(f"{_where(path, row, '.'.join(map(str, loc)) or '?')}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    seen: set[str] = set()
    for r in table.rows:
        if r.id in seen:
            raise ConfigError(f"{_where(path, r.id, 'id')}: row id {r.id} is used twice")
        seen.add(r.id)
    by_id = {r.id: r for r in table.rows}
    resolved = [_resolve(path, r, by_id, []) for r in table.rows]
    ids = set(by_id)
    for r in resolved:
        if r.kd and r.kd.row and ":" not in r.kd.row and r.kd.row not in ids:
            raise ConfigError(f"{_where(path, r.id, 'kd.row')}: teacher row {r.kd.row} is not in this table")
    for r in resolved:
        if r.backbone and r.backbone.row and ":" not in r.backbone.row and r.backbone.row not in ids:
            raise ConfigError(
                f"{_where(path, r.id, 'backbone.row')}: backbone row {r.backbone.row} is not in this table"
            )
    if table.baseline and table.baseline not in ids:
        raise ConfigError(f"{_where(path, None, 'baseline')}: row {table.baseline} is not in this table")
    for r in table.rows:
        if r.vs is not None and r.vs != "none" and (r.vs not in ids or r.vs == r.id):
            raise ConfigError(f"{_where(path, r.id, 'vs')}: {r.vs!r} is not another row of this table (or 'none')")
    return table, resolved


def _merge(a: dict[str, Any] | str | None, b: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
    if b is None:
        return a
    if isinstance(b, str) or a is None:
        return b
    a = {"name": a} if isinstance(a, str) else dict(a)
    return {**a, **b}


def _resolve(path: Path, row: Row, by_id: dict[str, Row], stack: list[str]) -> ResolvedRow:
    if row.id in stack:
        raise ConfigError(f"{_where(path, row.id, 'base')}: inheritance cycle {' -> '.join(stack + [row.id])}")
    parent = None
    if row.base is not None:
        if row.base not in by_id:
            raise ConfigError(f"{_where(path, row.id, 'base')}: row {row.base} is not in this table")
        parent = _resolve(path, by_id[row.base], by_id, stack + [row.id])
    model = _merge(parent.model if parent else None, row.model)
    backbone = row.backbone if row.backbone is not None else (parent.backbone if parent else None)
    if model is None and backbone is None:
        raise ConfigError(f"{_where(path, row.id, 'model')}: no model (give one, a base row, or a backbone)")
    reg = {**(parent.reg if parent else {}), **(row.reg or {})}
    kd = row.kd if row.kd is not None else (parent.kd if parent else None)
    _check_kd(path, row.id, kd, reg)
    optim = {**(parent.optim if parent else {}), **(row.optim or {})}
    if backbone is None:  # a transfer row's model is its backbone's: checked when the plan resolves it
        _check_model(path, row.id, model, reg)
    check_part(OptimConfig, optim, f"{path}: row {row.id}", "optim")
    return ResolvedRow(
        id=row.id,
        title=row.title or (parent.title if parent else ""),
        base=row.base,
        model=model if model is not None else {},
        reg=reg,
        optim=optim,
        kd=kd,
        autoaugment=row.autoaugment if row.autoaugment is not None else (parent.autoaugment if parent else False),
        epochs=row.epochs or (parent.epochs if parent else 120),
        input_size=row.input_size or (parent.input_size if parent else 224),
        train_size=row.train_size or (parent.train_size if parent else 224),
        reference=row.reference,
        vs=row.vs,
        paper=row.paper,
        search=row.search,
        backbone=backbone,
        dataset=row.dataset or (parent.dataset if parent else None),
        data={**(parent.data if parent else {}), **(row.data or {})},
        head={**(parent.head if parent else {}), **(row.head or {})},
        transfer={**(parent.transfer if parent else {}), **(row.transfer or {})},
    )


def _check_kd(path: Path, rid: str, kd: Teacher | None, reg: dict[str, Any]) -> None:
    """A teacher distils at reg.kd_temperature (1 unless the row says), and a temperature needs a
    teacher: one name for the temperature, from the table to best.yaml."""
    if kd is None:
        if reg.get("kd_temperature"):
            raise ConfigError(f"{_where(path, rid, 'reg.kd_temperature')}: the row has no teacher (kd: {{row: ...}})")
        return
    temperature = reg.setdefault("kd_temperature", 1.0)
    if not isinstance(temperature, int | float) or temperature <= 0:
        raise ConfigError(
            f"{_where(path, rid, 'reg.kd_temperature')}: a row with a kd: teacher distils at a temperature > 0"
        )


def _check_model(path: Path, rid: str, model: dict[str, Any] | str, reg: dict[str, Any]) -> None:
    try:
        model_cfg = resolve_config(model)
    except (ValueError, ValidationError) as e:
        raise ConfigError(describe(e, f"{path}: row {rid}", "model", first=True)) from None
    try:
        RegConfig.model_validate(reg)
        check_switches(model_cfg, set(reg))
    except (ValueError, ValidationError) as e:
        raise ConfigError(describe(e, f"{path}: row {rid}", "reg", first=True)) from None


def list_tables(root: Path) -> list[tuple[str, str, int]]:
    """(file stem, title, rows) of every ``table*.yaml`` in ``root``."""
    out = []
    for path in sorted(root.glob("table*.yaml")):
        table, rows = load_table(path)
        out.append((path.stem, table.title, len(rows)))
    return out


def table_path(spec: str, root: Path) -> Path:
    """``7`` / ``07`` / ``table07`` -> ablations/table07.yaml; anything else is a path."""
    s = str(spec)
    number = s if s.isdigit() else s[5:] if s.startswith("table") and s[5:].isdigit() else None
    if number is None:
        return Path(s)
    path = root / f"table{int(number):02d}.yaml"
    if not path.exists():
        have = ", ".join(stem[5:].lstrip("0") for stem in sorted(p.stem for p in root.glob("table*.yaml")))
        raise ConfigError(f"no table {number} in {root}; the tables are {have} (`assembled tables` lists them)")
    return path
