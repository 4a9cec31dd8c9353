"""The plan of an ablation: a table x profile resolved into typed trial configs, their KD
teachers, which rows are wanted and why, what each wanted row needs (run, re-evaluate, skip),
and a trial's resources checked against a cluster's nodes.

Pure: no Ray and no MLflow (only the data source is looked at on disk), so ``assembled plan``
and the tests can check every table x profile without a cluster or a tracking store. The
executor and the recorder take a :class:`Plan` and never re-validate it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config_io import ConfigError
from ..data.folder import DataError
from ..data.preflight import check_source
from ..evaluation.config import EvalConfig
from ..runner.driver import Settings
from ..training import TrainConfig
from .external_teachers import external_teachers
from .profiles import Profile, load_profiles, scaled_size, train_config
from .search_space import parse_space
from .spec import ResolvedRow, Table, load_table, table_path
from .transfer_rows import check_fits, checkpoint_identity, import_backbones, transfer_config
from .units import repeat_seed, unit_key

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class PlannedRow:
    """One seed of a row (a unit): what one trial trains."""

    row: ResolvedRow
    cfg: TrainConfig
    teacher: str | None = None  # unit key of its KD teacher (repeat 0 of the teacher's row)
    wanted: bool = False
    repeat: int = 0
    backbone: str | None = None  # transfer rows: unit key of the backbone row (repeat 0)
    same_as: str | None = None  # an earlier unit with this very config: its run is this unit's result
    trained_by: str | None = None  # an earlier unit that trains the same weights: this one only evaluates them

    @property
    def needs(self) -> list[str]:
        """The units that must finish before this one can start: its teacher, its backbone, the
        unit whose training it evaluates or whose run it is."""
        return [u for u in (self.teacher, self.backbone, self.trained_by, self.same_as) if u]

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def key(self) -> str:
        return unit_key(self.row.id, self.repeat)


@dataclass
class Plan:
    path: Path
    table: Table
    profile_name: str
    profile: Profile
    data: str | None
    rows: dict[str, PlannedRow]  # unit key -> unit: the table's rows, extra teacher rows, then repeats
    table_rows: list[str]
    eval_cfg: EvalConfig
    repeats: int = 1
    notes: list[str] = field(default_factory=list)
    paper_only: list[str] = field(default_factory=list)  # reference rows this profile does not train

    @property
    def experiment(self) -> str:
        return self.path.stem

    @property
    def hashes(self) -> dict[str, str]:
        return {rid: r.cfg.config_hash() for rid, r in self.rows.items()}

    @property
    def wanted(self) -> list[str]:
        return [rid for rid, r in self.rows.items() if r.wanted]

    @property
    def units(self) -> dict[str, tuple[str, str]]:
        """unit key -> (row id, config hash): how a unit's run is found in MLflow (a unit with
        the config of an earlier one is found as that one's run)."""
        return {k: self.run_key(u) for k, u in self.rows.items()}

    def run_key(self, unit: PlannedRow) -> tuple[str, str]:
        owner = self.rows[unit.same_as] if unit.same_as else unit
        return owner.id, owner.cfg.config_hash()

    def is_reference(self, unit: PlannedRow) -> bool:
        """Shown, not judged: a reference model, or a row of another table (a teacher, a backbone)."""
        return unit.row.reference or unit.id not in self.table_rows

    def units_of(self, row: str) -> list[PlannedRow]:
        return sorted((u for u in self.rows.values() if u.id == row), key=lambda u: u.repeat)

    def trial_settings(self) -> Settings:
        """What the trial driver needs of this plan's profile and evaluation."""
        prof = self.profile
        return Settings(
            self.profile_name, prof.resources, prof.max_failures, self.eval_cfg, prof.resnet, scaled_size(224, prof)
        )


def build_plan(
    spec: str,
    profile: str = "cpu",
    data: str | None = None,
    rows: list[str] | None = None,
    ablations_dir: Path | None = None,
    repeats: int | None = None,
    decode: bool = True,
) -> Plan:
    """Everything validated before anything runs; a bad table, profile or data source raises
    :class:`ConfigError` naming the file, row and key (or the data path). ``repeats`` (seeds
    per row) overrides the table's, which overrides the profile's. ``decode=False`` (plan)
    finds the data sources without decoding an image source that is not cached yet."""
    ablations_dir = ablations_dir or ROOT / "ablations"
    path = table_path(spec, ablations_dir)
    table, resolved = load_table(path)
    profiles_path = ablations_dir / "profiles.yaml"
    profiles = load_profiles(profiles_path)
    if profile not in profiles:
        raise ConfigError(f"{profiles_path}: no profile {profile!r}; have {', '.join(profiles)}")
    prof = profiles[profile]
    if rows:
        missing = set(rows) - {r.id for r in resolved}
        if missing:
            have = ", ".join(r.id for r in resolved)
            raise ConfigError(f"{path}: no row(s) {', '.join(sorted(missing))}; the table has {have}")
    extra, teacher_of = external_teachers(path, resolved, ablations_dir)
    plain = [r for r in resolved if not r.is_transfer]
    planned = {r.id: PlannedRow(r, train_config(r, table, prof, data)) for r in plain + extra}
    for rid, teacher in teacher_of.items():
        planned[rid].teacher = _substitute(teacher, prof, profile, planned, profiles_path)
    planned = _add_transfer_rows(path, table, resolved, planned, prof, profile, data, ablations_dir)
    bind_teachers(planned, path)
    n = repeats or table.repeats or prof.repeats
    add_repeats(planned, [r.id for r in resolved], n)
    share_training(planned, [r.id for r in resolved])
    asked = set(rows or [r.id for r in resolved])
    # a profile too small to train the reference models shows the paper's numbers for them instead
    paper_only = set() if rows or prof.train_references else {r.id for r in resolved if r.reference}
    requested = [u.key for u in planned.values() if u.id in asked - paper_only]
    for key in wanted_closure(planned, requested):
        planned[key].wanted = True
    paper_only = {rid for rid in paper_only if not planned[rid].wanted}  # a teacher someone needs trains
    plan = Plan(path, table, profile, prof, data, planned, [r.id for r in resolved], prof.evaluation, n)
    plan.paper_only = sorted(paper_only, key=[r.id for r in resolved].index)
    check_search_spaces(plan, profiles_path)
    check_data(plan, decode)
    return plan


def check_search_spaces(plan: Plan, profiles_path: Path) -> None:
    """Each ``search:`` block (a row's, the profile's) against the config it would vary, when the
    table is planned, not when ``assembled search`` first reads it."""
    for rid in plan.table_rows:
        unit = plan.rows[rid]
        if unit.row.search:
            parse_space(unit.row.search, unit.cfg, f"{plan.path}: row {rid}")
    if plan.profile.search and plan.table_rows:
        first = plan.rows[plan.table_rows[0]].cfg
        parse_space(plan.profile.search, first, f"{profiles_path}: profile {plan.profile_name}", check_use=False)


def _add_transfer_rows(
    path: Path,
    table: Table,
    resolved: list[ResolvedRow],
    planned: dict[str, PlannedRow],
    prof: Profile,
    profile: str,
    data: str | None,
    ablations_dir: Path,
) -> dict[str, PlannedRow]:
    """Transfer rows, with the backbone rows (and their teachers) they import from other tables;
    the table's own rows keep their order first."""
    imported = import_backbones(path, resolved, ablations_dir, prof)
    for rid, (row, other) in imported.rows.items():
        planned.setdefault(rid, PlannedRow(row, train_config(row, other, prof, data)))
    for rid, teacher in imported.teacher_of.items():
        planned[rid].teacher = teacher
    for r in (r for r in resolved if r.is_transfer):
        assert r.backbone is not None
        if r.backbone.row is not None:
            bb = imported.backbone_of[r.id]
            cfg = transfer_config(r, table, prof, profile, planned[bb].row.model, data, path)
            check_fits(r.id, cfg, planned[bb].cfg, path)
            planned[r.id] = PlannedRow(r, cfg, backbone=bb)
        else:
            file, digest = checkpoint_identity(r, path)
            model = _checkpoint_model(file, path, r.id)
            cfg = transfer_config(r, table, prof, profile, model, data, path)
            transfer = cfg.transfer.model_copy(update={"backbone": f"sha256:{digest}", "checkpoint": file})
            planned[r.id] = PlannedRow(r, cfg.model_copy(update={"transfer": transfer}))
    own = {r.id: planned[r.id] for r in resolved}  # the table's rows first, in its order
    return own | {k: u for k, u in planned.items() if k not in own}


def _checkpoint_model(file: str, where: Path, rid: str) -> dict:
    """The model config a checkpoint of the assembled trainer was trained with."""
    from ..training import checkpoint as ckpt

    try:
        state = ckpt.load(file)
        return TrainConfig.model_validate(state["config"]).model.model_dump()
    except Exception as e:
        raise ConfigError(f"{where}: row {rid}: key 'backbone.checkpoint': {file}: {e}") from None


def _substitute(teacher: str, prof: Profile, name: str, rows: dict[str, PlannedRow], where: Path) -> str:
    """A profile's teacher substitute applies to tables that have the teacher row; its
    substitute must then be a row of the table too."""
    sub = prof.teachers.get(teacher)
    if sub is None:
        return teacher
    if sub not in rows:
        raise ConfigError(f"{where}: profile {name}: key 'teachers.{teacher}': row {sub} is not in this table")
    return sub


def bind_teachers(rows: dict[str, PlannedRow], path: Path) -> None:
    """Make each student's identity include its teacher's, and each transfer row's its backbone's,
    those first (a teacher may be a student, a backbone a student)."""
    bound: set[str] = set()
    while len(bound) < len(rows):
        progress = False
        for rid, r in rows.items():
            if rid in bound or any(u not in bound for u in r.needs):
                continue
            if r.teacher:
                teacher_hash = rows[r.teacher].cfg.config_hash()
                r.cfg = r.cfg.model_copy(update={"reg": r.cfg.reg.model_copy(update={"teacher": teacher_hash})})
            if r.backbone and r.cfg.transfer is not None:
                transfer = r.cfg.transfer.model_copy(update={"backbone": rows[r.backbone].cfg.config_hash()})
                r.cfg = r.cfg.model_copy(update={"transfer": transfer})
            bound.add(rid)
            progress = True
        if not progress:
            raise ConfigError(
                f"{path}: KD teachers or backbones form a cycle among rows {', '.join(sorted(set(rows) - bound))}"
            )


def add_repeats(units: dict[str, PlannedRow], table_rows: list[str], n: int) -> None:
    """Seeds 1..n-1 of every table row, each its own unit (teachers already bound: a student's
    every seed distils from its teacher's repeat 0, so the gain measured is the student's).
    Extra teacher rows from other tables train once."""
    for rid in table_rows:
        first = units[rid]
        for k in range(1, n):
            cfg = first.cfg.model_copy(update={"seed": repeat_seed(first.cfg.seed, k)})
            units[unit_key(rid, k)] = PlannedRow(first.row, cfg, first.teacher, repeat=k, backbone=first.backbone)


def share_training(units: dict[str, PlannedRow], table_rows: list[str]) -> None:
    """Rows that need no training of their own, seed by seed, against earlier rows of the table:
    the same config (``same_as``: a profile's cap made T4 equal to T3, so T4 is T3's run), or the
    same training with another evaluation crop (``trained_by``: T4 is T3's weights evaluated at
    256 px, as in the paper). Nothing is trained twice."""
    hashes: dict[str, tuple[str, str]] = {}  # unit key -> (config, training) hash, each computed once

    def of(u: PlannedRow) -> tuple[str, str]:
        if u.key not in hashes:
            hashes[u.key] = (u.cfg.config_hash(), u.cfg.training_hash())
        return hashes[u.key]

    for i, rid in enumerate(table_rows):
        for unit in (u for u in units.values() if u.id == rid):
            for earlier in table_rows[:i]:
                other = units.get(unit_key(earlier, unit.repeat))
                if other is None or other.same_as:
                    continue
                if of(other)[0] == of(unit)[0]:
                    unit.same_as = other.key
                    break
                if of(other)[1] == of(unit)[1]:
                    unit.trained_by = other.trained_by or other.key
                    break


def wanted_closure(rows: dict[str, PlannedRow], requested: list[str]) -> set[str]:
    """The requested rows and every teacher and backbone up their chains (G -> T -> S pulls in T and G)."""
    wanted: set[str] = set()
    stack = list(requested)
    while stack:
        rid = stack.pop()
        if rid in wanted:
            continue
        wanted.add(rid)
        stack.extend(rows[rid].needs)
    return wanted


def check_data(plan: Plan, decode: bool = True) -> None:
    """Each distinct data source of the wanted rows, once, with the smallest batch that reads it
    (decoded into its cache unless ``decode`` is False)."""
    seen: dict[str, tuple[PlannedRow, int]] = {}
    for rid in plan.wanted:
        unit = plan.rows[rid]
        cfg = unit.cfg
        key = cfg.data.model_dump_json(include={"kind", "path", "limit_per_class", "val_limit_per_class", "split"})
        if key not in seen or cfg.optim.batch_size > seen[key][1]:
            seen[key] = (unit, cfg.optim.batch_size)
    for unit, batch in seen.values():
        try:
            check_source(unit.cfg.data, batch, decode)
        except DataError as e:
            if plan.data and unit.cfg.data.path == str(plan.data):
                origin = "--data"
            elif unit.row.dataset and unit.row.is_transfer:
                origin = f"profile {plan.profile_name}: key 'datasets.{unit.row.dataset}'"
            else:
                origin = f"profile {plan.profile_name}: key 'data.path'"
            raise ConfigError(f"{origin}: {e}") from None


Action = Literal["run", "re-evaluate", "skip", "same"]


@dataclass
class Decision:
    action: Action
    why: str


def decide(plan: Plan, finished: dict[str, str | None], rerun: bool) -> dict[str, Decision]:
    """What each wanted row needs, given the eval identity (tag eval_hash) of its finished run."""
    eval_id = plan.eval_cfg.identity()
    out: dict[str, Decision] = {}
    for rid in plan.wanted:
        same = plan.rows[rid].same_as
        if same:
            out[rid] = Decision("same", f"the same config as {same} under this profile: {same}'s run is its result")
        elif rid not in finished:
            out[rid] = Decision("run", "no finished run with this config hash")
        elif rerun:
            out[rid] = Decision("run", "--rerun: trained afresh into a new run")
        elif finished[rid] != eval_id:
            out[rid] = Decision(
                "re-evaluate",
                "evaluated with other settings or another generation of corrupted images "
                "(its mCE/mFR would not compare with new rows)",
            )
        else:
            out[rid] = Decision("skip", "finished with this config hash and evaluation")
    return out
