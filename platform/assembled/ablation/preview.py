"""``assembled tables`` and ``assembled plan``: see a table before running it.

The plan is the runner's own (plan.py), so what it prints is what ``ablation`` would do: every
row with its resolved config as a diff against its base row, its KD teacher, and whether it
would run, be re-evaluated or be skipped, and why. It reads the tracking store when one exists
and never writes: no run, no experiment and no SQLite file is created.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan


def cmd_tables(args: argparse.Namespace) -> int:
    from .plan import ROOT
    from .spec import list_tables

    for stem, title, n in list_tables(ROOT / "ablations"):
        print(f"{stem[5:].lstrip('0'):>3}  {stem}.yaml  {n:2d} rows  {title}")
    return 0


def _finished(plan: Plan) -> dict[str, str | None]:
    """Eval identity of each row's FINISHED run in the store, read-only (no store: none)."""
    from ..tracking.store import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}
    from mlflow.tracking import MlflowClient

    from .summary import latest_runs

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(plan.experiment)
    if exp is None:
        return {}
    runs = latest_runs(client, exp.experiment_id, plan.hashes)
    return {rid: r.data.tags.get("eval_hash") for rid, r in runs.items() if r.info.status == "FINISHED"}


def config_diff(plan: Plan, rid: str) -> str:
    """The keys where a row's resolved training config differs from its base row's."""
    from ..training.config import flatten

    base = next((r.base for r in plan.table.rows if r.id == rid), None)
    if base is None or base not in plan.rows:
        return ""
    mine = flatten(plan.rows[rid].cfg.model_dump(mode="json"))
    theirs = flatten(plan.rows[base].cfg.model_dump(mode="json"))
    changed = [f"{k}={mine.get(k)}" for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    return f"vs {base}: " + ", ".join(k for k in changed if not k.startswith("reg.teacher="))


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan import build_plan, decide

    plan = build_plan(args.table, args.profile, args.data, args.rows)
    decisions = decide(plan, _finished(plan), args.rerun)
    print(f"{plan.path.name}: {plan.table.title} (profile {args.profile}; {plan.profile.description})")
    counts: dict[str, int] = {}
    for rid, prow in plan.rows.items():
        d = decisions.get(rid)
        action = d.action if d else "not requested"
        counts[action] = counts.get(action, 0) + 1
        teacher = f" KD from {prow.teacher}" if prow.teacher else ""
        print(f"  {rid:>8}  {action:<13} {prow.cfg.optim.epochs:>4} ep{teacher}  {prow.row.title}")
        if d:
            print(f"{'':12}{d.why}")
        diff = config_diff(plan, rid)
        if diff:
            print(f"{'':12}{diff}")
    print("; ".join(f"{n} {a}" for a, n in counts.items()) + ". Nothing was run or recorded.")
    return 0


def register(sub) -> None:
    s = sub.add_parser("tables", help="list the shipped tables with their titles and row counts")
    s.set_defaults(fn=cmd_tables)
    s = sub.add_parser("plan", help="what `ablation` would run, skip or re-evaluate, and why (runs nothing)")
    s.add_argument("table", help="table number (7) or a YAML file of your own")
    s.add_argument("--profile", default="cpu", help="profile in ablations/profiles.yaml")
    s.add_argument("--data", help="ImageFolder root to use instead of the profile's data")
    s.add_argument("--rows", nargs="+", help="only these rows (and their teachers)")
    s.add_argument("--rerun", action="store_true", help="as `ablation --rerun` would decide")
    s.set_defaults(fn=cmd_plan)
