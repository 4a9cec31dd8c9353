"""``assembled ablation TABLE|PATH.yaml [--profile cpu] [--data PATH] [--address ...] [--rerun] [--repeats N]``."""

from __future__ import annotations

import argparse


def cmd_ablation(args: argparse.Namespace) -> int:
    from .plan import build_plan

    # the table, profile, rows and data are checked here, before torch, Ray and MLflow load
    plan = build_plan(args.table, args.profile, args.data, args.rows, None, args.repeats)
    from .runner import print_result, run_plan

    result = run_plan(plan, args.address, args.rerun, executor=args.executor, retime=args.retime)
    print_result(result)
    return 1 if result.failed or result.not_run else 0


def register(sub) -> None:
    s = sub.add_parser("ablation", help="run every row of a table as a Ray trial, tracked in MLflow")
    s.add_argument("table", help="table number (7) or a YAML file of your own")
    s.add_argument(
        "--profile", default="cpu", help="profile in ablations/profiles.yaml (smoke, cpu, cifar-cpu, cifar, imagenet)"
    )
    s.add_argument("--data", help="ImageFolder root (with train/ and val/) to use instead of the profile's data")
    s.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    s.add_argument("--rerun", action="store_true", help="train rows afresh into new runs, finished or not")
    s.add_argument("--rows", nargs="+", help="only these rows (and their teachers, up the whole chain)")
    s.add_argument(
        "--repeats", type=int, metavar="N", help="seeds per row (default: the table's, else the profile's, else 1)"
    )
    s.add_argument("--retime", action="store_true", help="time every row's inference again (e.g. on an idle machine)")
    s.add_argument(
        "--executor",
        choices=["ray", "local"],
        default="ray",
        help="ray (default): trials on Ray, in parallel; local: one after another in this process (no Ray needed)",
    )
    s.set_defaults(fn=cmd_ablation)
