"""``assembled dashboard [TABLE ...] [--out dashboards/out]``: pages from MLflow alone."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from .build import build
    from .source import DashboardError, default_uri

    uri = args.tracking_uri or default_uri()
    t0 = time.perf_counter()
    try:
        written = build(MlflowClient(tracking_uri=uri), args.tables or None, Path(args.out), not args.no_artifact)
    except DashboardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, path in written.pages.items():
        print(f"{name}: {path.resolve()}")
    print(f"index: {written.index.resolve()}  ({time.perf_counter() - t0:.1f} s, from {uri})")
    return 0


def register(sub) -> None:
    s = sub.add_parser("dashboard", help="plotly pages of paper vs measured per table, from MLflow")
    s.add_argument("tables", nargs="*", help="table numbers or experiment names (default: every table in MLflow)")
    s.add_argument("--out", default="dashboards/out", help="folder for the HTML pages (default: dashboards/out)")
    s.add_argument("--tracking-uri", help="MLflow store or server (default: MLFLOW_TRACKING_URI, else ./mlflow.db)")
    s.add_argument("--no-artifact", action="store_true", help="do not attach the page to the table's parent run")
    s.set_defaults(fn=cmd_dashboard)
