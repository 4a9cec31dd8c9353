"""``assembled search TABLE --row R --trials N [--objective ...] [--study NAME] [--storage URL]``."""

from __future__ import annotations

import argparse

from .study import PRUNERS, SAMPLERS


def cmd_search(args: argparse.Namespace) -> int:
    from .options import SearchOptions, search_plan

    opts = SearchOptions(
        table=args.table,
        row=args.row,
        trials=args.trials,
        profile=args.profile,
        data=args.data,
        objective=args.objective,
        study=args.study,
        storage=args.storage,
        space=args.space,
        sampler=args.sampler,
        pruner=args.pruner,
        seed=args.seed,
        concurrency=args.concurrency,
        address=args.address,
        executor=args.executor,
    )
    plan = search_plan(opts)  # bad input answers here, before torch, Ray and Optuna load
    from .runner import run_search

    result = run_search(opts, plan)
    print_result(result)
    return 0


def print_result(result) -> None:
    from ..redact import redact
    from ..tracking.store import tracking_uri
    from ..tracking.ui import experiment_url

    print()
    print(
        f"study {result.study}: {result.counted} trials complete or pruned in {redact(result.storage)} "
        f"(this invocation: {len(result.ran)} complete, {len(result.pruned)} pruned, {len(result.failed)} failed)"
    )
    for n, why in sorted(result.failed.items()):
        print(f"  trial {n} failed: {why}")
    if result.base:
        print("base row: " + ", ".join(f"{k} {v:.2f}" for k, v in result.base.items()))
    else:
        print("base row: no finished run with this profile (run the ablation of the row to compare)")
    for b in result.best:
        vals = ", ".join(f"{v:.2f}" for v in b["values"])
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["params"].items())
        print(f"best trial {b['number']}: {vals}  ({params})")
    if result.best_yaml:
        print(f"as table rows (paste into a table): {result.best_yaml}")
    uri = tracking_uri()
    base = uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    print(f"MLflow experiment '{result.experiment}' ({experiment_url(base)}); "
          f"optuna-dashboard {redact(result.storage)}")  # fmt: skip


def register(sub) -> None:
    s = sub.add_parser("search", help="an Optuna search around one row of a table, trials run as ablation rows")
    s.add_argument("table", help="table number (7) or a YAML file of your own")
    s.add_argument("--row", required=True, help="the row whose resolved config is the base of the search")
    s.add_argument("--trials", type=int, required=True, help="complete + pruned trials the study should hold")
    s.add_argument("--profile", default="cpu", help="profile in ablations/profiles.yaml")
    s.add_argument("--data", help="ImageFolder root to use instead of the profile's data")
    s.add_argument(
        "--objective", default="top1", help="top1 | mce | mfr | throughput, or two: top1,mce or top1,throughput"
    )
    s.add_argument("--study", help="study name (default: <table>-<row>-<profile>-<objective>)")
    s.add_argument("--storage", help="Optuna RDB storage URL (default: optuna.db beside the MLflow store)")
    s.add_argument("--space", help="a YAML search space (default: the row's search:, the profile's, or a default)")
    s.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler (nsga2 for two objectives)")
    s.add_argument("--pruner", choices=PRUNERS, default="median", help="pruner fed by per-epoch top-1 (top1 only)")
    s.add_argument("--seed", type=int, help="sampler seed (reproducible suggestions)")
    s.add_argument("--concurrency", type=int, help="at most this many trials at once (default: what the cluster fits)")
    s.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    s.add_argument(
        "--executor",
        choices=["ray", "local"],
        default="ray",
        help="ray (default): trials on Ray, in parallel; local: one after another in this process (no Ray needed)",
    )
    s.set_defaults(fn=cmd_search)
