"""``assembled tables`` and ``assembled plan``: see a table before running it.

The plan is the runner's own (plan.py), so what it prints is what ``ablation`` would do: every
row with its resolved config as a diff against its base row, its KD teacher, and whether it
would run, be re-evaluated or be skipped, and why. It reads the tracking store when one exists
and never writes: no run, no experiment and no SQLite file is created.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan


def cmd_tables(args: argparse.Namespace) -> int:
    from .plan import ROOT
    from .spec import list_tables

    for stem, title, n in list_tables(ROOT / "ablations"):
        print(f"{stem[5:].lstrip('0'):>3}  {stem}.yaml  {n:2d} rows  {title}")
    return 0


def _finished(plan: Plan, client) -> tuple[dict[str, str | None], dict[str, str]]:
    """Eval identity of each unit's FINISHED run (its own, or another table's that it would
    reuse), and where the reused ones come from."""
    from .summary import table_runs

    exp = client.get_experiment_by_name(plan.experiment) if client else None
    if client is None:
        return {}, {}
    runs = table_runs(client, exp.experiment_id if exp else "", plan.units, plan.eval_cfg.identity())
    done = {k: r for k, r in runs.items() if r.info.status == "FINISHED"}
    reused = {
        k: f"table {r.data.tags.get('table', '?')} row {r.data.tags.get('row', '?')}"
        for k, r in done.items()
        if exp is None or r.info.experiment_id != exp.experiment_id
    }
    return {k: r.data.tags.get("eval_hash") for k, r in done.items()}, reused


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
    from ..runner.progress import duration
    from .estimate import Estimator
    from .plan import build_plan, decide

    plan = build_plan(args.table, args.profile, args.data, args.rows, repeats=args.repeats, decode=False)
    from ..tracking.store import read_only_client

    client = read_only_client()
    finished, reused = _finished(plan, client)
    decisions = decide(plan, finished, args.rerun)
    estimate = Estimator(client)
    print(f"{plan.path.name}: {plan.table.title} (profile {args.profile}; {plan.profile.description})")
    print(f"{plan.repeats} seed(s) a row; {plan.table.kind}: {_judged(plan)}")
    print(_resources_line(plan))
    if plan.paper_only:
        print(
            f"reference rows {', '.join(plan.paper_only)}: the paper's numbers only, not trained under profile "
            f"{args.profile} (train_references: false; --rows trains them)"
        )
    counts: dict[str, int] = {}
    cost, unknown = 0.0, 0
    for rid in dict.fromkeys(u.id for u in plan.rows.values()):
        units = plan.units_of(rid)
        first = units[0]
        teacher = f" KD from {plan.rows[first.teacher].id}" if first.teacher else ""
        print(f"  {rid:>8}  {first.cfg.optim.epochs:>4} ep{teacher}  {first.row.title}")
        diff = config_diff(plan, rid)
        if diff:
            print(f"{'':12}{diff}")
        for u in units:
            d = decisions.get(u.key)
            action = d.action if d else "not requested"
            counts[action] = counts.get(action, 0) + 1
            line = f"{'':12}seed {u.cfg.seed}: {action}" + (f" - {d.why}" if d else "")
            if u.key in reused and d and d.action == "skip":
                line += f" (reuses {reused[u.key]})"
            if u.trained_by and d and d.action != "skip":
                line += f"; evaluates {u.trained_by}'s weights (the same training; only the evaluation crop differs)"
            elif d and d.action not in ("skip", "same"):
                est = estimate(u.cfg, plan.profile_name)
                if est:
                    cost += est.seconds
                    line += f"; ~{duration(est.seconds)} ({est.basis})"
                else:
                    unknown += 1
            print(line)
    print("; ".join(f"{n} {a}" for a, n in counts.items()) + ". Nothing was run or recorded.")
    if cost:
        at_once = max(1, int((os.cpu_count() or 1) // max(plan.profile.resources.cpu, 1)))
        print(
            f"estimated trial time {duration(cost)} in all, about {duration(cost / at_once)} on this machine "
            f"({at_once} trial(s) at once), plus Ray start and throughput timing"
            + (f"; {unknown} trial(s) have no estimate (no finished run of their model)" if unknown else "")
        )
    elif unknown:
        print(f"no estimate for {unknown} trial(s): no finished run of their model in this store yet")
    return 0


def _resources_line(plan: Plan) -> str:
    """What each trial gets: on a cluster (RAY_ADDRESS) the profile's request, on a local Ray
    what ``ablation`` would fit to this machine (more one-thread trials on a small CPU box)."""
    from ..config_io import ConfigError
    from ..runner.resources import fit_resources, fmt, this_machine

    req = plan.profile.resources
    if os.environ.get("RAY_ADDRESS"):
        asked = {"CPU": req.cpu} | ({"GPU": req.gpu} if req.gpu else {})
        return f"trials: {fmt(asked)} each (profile {plan.profile_name})"
    here = this_machine()
    try:
        fitted, note = fit_resources(plan.profile_name, req, [here], True)
    except ConfigError as e:
        return f"on a local Ray: {e} (ablation would stop there)"
    return f"on a local Ray: {note or f'each trial gets {fmt(fitted)} of the {fmt(here)} here'}"


def _judged(plan: Plan) -> str:
    own = " (rows with vs: as they say)" if any(r.vs for r in plan.table.rows) else ""
    if plan.table.kind == "stacked":
        return "each row is judged against the row it adds to" + own
    return f"each row is judged against {plan.table.baseline or 'the first row'}" + own


def register(sub) -> None:
    s = sub.add_parser("tables", help="list the shipped tables with their titles and row counts")
    s.set_defaults(fn=cmd_tables)
    s = sub.add_parser("plan", help="what `ablation` would run, skip or re-evaluate, and why (runs nothing)")
    s.add_argument("table", help="table number (7) or a YAML file of your own")
    s.add_argument("--profile", default="cpu", help="profile in ablations/profiles.yaml")
    s.add_argument("--data", help="ImageFolder root to use instead of the profile's data")
    s.add_argument("--rows", nargs="+", help="only these rows (and their teachers)")
    s.add_argument("--rerun", action="store_true", help="as `ablation --rerun` would decide")
    s.add_argument("--repeats", type=int, metavar="N", help="seeds per row, as `ablation --repeats` would run")
    s.set_defaults(fn=cmd_plan)
