"""Transfer rows (Tables 10-13): the backbone rows they need, and their fine-tuning configs.

A backbone named as another table's row (``table07:E11``) becomes an extra, reference-marked
row of this invocation, with the teacher chain it distils from, built exactly as its own table
builds it (that table's schedule, this profile, the profile's pretraining data): its config hash
is the one its own table gives it, so a run finished there (or by another transfer table) is
reused, and a backbone is trained once however many rows and tables use it.

A transfer row's network is its backbone's (the profile's widths included) plus the row's own
model switches (DropBlock for fine-tuning, ``last_stride: 1`` for retrieval); it trains on its
dataset (the profile's ``datasets`` entry, or ``--data``). Its identity includes the backbone's
(the backbone run's config hash, or the checkpoint file's sha256), so a changed backbone reruns
its dependants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config_io import ConfigError, describe
from ..data.layouts import detect_kind
from ..training import TrainConfig
from .external_teachers import other_table
from .profiles import Profile, train_config
from .spec import ResolvedRow, Table, load_table


@dataclass
class Imported:
    """Rows of other tables this table needs: id -> (row, its table); and the links."""

    rows: dict[str, tuple[ResolvedRow, Table]] = field(default_factory=dict)
    teacher_of: dict[str, str] = field(default_factory=dict)  # imported student -> imported teacher
    backbone_of: dict[str, str] = field(default_factory=dict)  # transfer row -> backbone row id


def import_backbones(path: Path, rows: list[ResolvedRow], ablations_dir: Path, prof: Profile) -> Imported:
    out = Imported()
    for r in rows:
        if r.backbone is None or r.backbone.row is None:
            continue
        ref = r.backbone.row
        if ":" not in ref:
            out.backbone_of[r.id] = ref
            continue
        spec, row_id = ref.rsplit(":", 1)
        other = other_table(spec, path, ablations_dir)
        if not other.exists():
            raise ConfigError(f"{path}: row {r.id}: key 'backbone.row': table {other} does not exist")
        table, other_rows = load_table(other)
        by_id = {x.id: x for x in other_rows}
        if row_id not in by_id:
            raise ConfigError(f"{path}: row {r.id}: key 'backbone.row': {other.name} has no row {row_id}")
        if by_id[row_id].is_transfer:
            raise ConfigError(f"{path}: row {r.id}: key 'backbone.row': {ref} is itself a transfer row")
        out.backbone_of[r.id] = _import(other, table, by_id, row_id, prof, out)
    return out


def _import(other: Path, table: Table, by_id: dict[str, ResolvedRow], row_id: str, prof: Profile, out: Imported) -> str:
    """Add ``row_id`` of ``other`` and its KD teacher chain (profile substitutes applied, as its
    own table would); returns its id here."""
    rid = f"{other.stem}:{row_id}"
    if rid in out.rows:
        return rid
    row = by_id[row_id]
    title = f"{row.title or row_id} (from {other.name})"
    out.rows[rid] = (row.model_copy(update={"id": rid, "title": title}), table)
    if row.kd is not None:
        if row.kd.row is None or ":" in row.kd.row:
            raise ConfigError(f"{other}: row {row_id}: a backbone's KD teacher must be a row of its own table")
        teacher = prof.teachers.get(row.kd.row, row.kd.row)
        if teacher not in by_id:
            raise ConfigError(f"{other}: row {row_id}: teacher row {teacher} is not in this table")
        out.teacher_of[rid] = _import(other, table, by_id, teacher, prof, out)
    return rid


def dataset_data(row: ResolvedRow, prof: Profile, profile_name: str, data: str | None) -> dict[str, Any]:
    """The DataConfig fields of a transfer row's dataset: the profile's entry (its '*' for a
    dataset it does not name); where that is synthetic or missing, ``--data`` (its layout
    detected); the row's own data keys last. A real dataset the profile names stays: there
    ``--data`` is the backbones' pretraining data, as in every table."""
    name = row.dataset or "*"
    entry = prof.datasets.get(name, prof.datasets.get("*"))
    if entry is None and not data:
        raise ConfigError(
            f"profile {profile_name} has no data for dataset {name!r} (row {row.id}): add datasets.{name} "
            "to the profile or pass --data"
        )
    out = dict(entry or {})
    if data and out.get("kind", "synthetic") == "synthetic":  # the folder decides its layout
        out |= {"path": str(data), "kind": detect_kind(Path(data))}
        if out.get("kind") == "folder":  # synthetic-only keys do not apply to a folder
            out = {k: v for k, v in out.items() if k not in ("num_classes", "train_size", "val_size", "fine_grained")}
    return out | row.data


def transfer_config(
    row: ResolvedRow,
    table: Table,
    prof: Profile,
    profile_name: str,
    backbone_model: dict[str, Any] | str,
    data: str | None,
    where: Path,
) -> TrainConfig:
    """A transfer row's config: the backbone's network with the row's switches, its dataset, its
    head; ``transfer.backbone`` is bound to the backbone's identity afterwards (plan.py)."""

    def as_dict(m: dict[str, Any] | str) -> dict[str, Any]:
        return m if isinstance(m, dict) else {"name": m}

    # the backbone's architecture, not its training regularisers: DropBlock during fine-tuning is
    # the row's own switch (F9 fine-tunes E11's network without it, F10 adds it)
    model = {**as_dict(backbone_model), "dropblock": False, **as_dict(row.model)}
    merged = row.model_copy(update={"model": model})
    cfg = train_config(merged, table, prof, None, data_base=dataset_data(row, prof, profile_name, data))
    head = dict(row.head)
    if head.get("kind") == "embedding" and "dim" in head and prof.resnet.get("width"):
        # a narrower profile ResNet gets a proportionally smaller embedding (1536 at width 64)
        head["dim"] = max(8, int(head["dim"] * prof.resnet["width"] / 64))
    try:
        return TrainConfig.model_validate(
            cfg.model_dump() | {"head": head, "transfer": {"backbone": "unbound", **row.transfer}}
        )
    except ValidationError as e:
        raise ConfigError(describe(e, f"{where}: row {row.id}", first=True)) from None


def checkpoint_identity(row: ResolvedRow, where: Path) -> tuple[str, str]:
    """(absolute path, sha256) of a row's backbone checkpoint file."""
    assert row.backbone is not None and row.backbone.checkpoint is not None
    path = Path(row.backbone.checkpoint)
    path = path if path.is_absolute() else (where.parent / path)
    if not path.exists():
        raise ConfigError(f"{where}: row {row.id}: key 'backbone.checkpoint': {path} does not exist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return str(path.resolve()), digest


def check_fits(row_id: str, cfg: TrainConfig, backbone: TrainConfig, where: Path) -> None:
    """Before anything runs: the fine-tuning network has every backbone layer, in its shape
    (built on the meta device: no memory, no time). Only transfer tables build networks here,
    so torch is imported here, not when any plan starts."""
    import torch

    from ..training.transfer import backbone_of, build_network

    with torch.device("meta"):
        ours = backbone_of(build_network(cfg, 2)).state_dict()
        theirs = build_network(backbone, 2).state_dict()
    skip = ("fc.", "classifier.")
    a = {k: v.shape for k, v in ours.items() if not k.startswith(skip)}
    b = {k: v.shape for k, v in theirs.items() if not k.startswith(skip)}
    if a != b:
        diff = sorted(set(a) ^ set(b)) or sorted(k for k in a if a[k] != b[k])
        raise ConfigError(
            f"{where}: row {row_id}: its network does not fit its backbone's weights ({', '.join(diff[:5])}); "
            "a transfer row may add only parameter-free switches (dropblock, last_stride)"
        )


__all__ = ["Imported", "check_fits", "checkpoint_identity", "import_backbones", "transfer_config"]
