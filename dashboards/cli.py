"""``assembled dashboard [TABLE ...] [--out dashboards/out]``: pages from MLflow alone;
``--study NAME``: an Optuna search's page, from its storage and MLflow."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def cmd_dashboard(args: argparse.Namespace) -> int:
    from assembled.redact import redact
    from assembled.tracking.store import read_only_client

    from .build import build
    from .source import DashboardError, default_uri

    uri = args.tracking_uri or default_uri()
    t0 = time.perf_counter()
    client = read_only_client(uri)
    if client is None:  # a page reads runs; it never creates an empty store to find none in
        print(
            f"error: no MLflow store at {redact(uri)}: run an ablation first (or set MLFLOW_TRACKING_URI)",
            file=sys.stderr,
        )
        return 2
    if args.study:
        return _study(args, uri)
    try:
        written = build(client, args.tables or None, Path(args.out), not args.no_artifact)
    except DashboardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, path in written.pages.items():
        print(f"{name}: {path.resolve()}")
    print(f"index: {written.index.resolve()}  ({time.perf_counter() - t0:.1f} s, from {redact(uri)})")
    return 0


def _study(args: argparse.Namespace, uri: str) -> int:
    from assembled.search.study import default_storage
    from assembled.tracking.store import read_only_client

    from .study import StudyError, load_study, study_page

    storage = args.storage or default_storage(uri)
    client = read_only_client(uri)
    assert client is not None  # cmd_dashboard returned for a missing store
    try:
        data = load_study(client, storage, args.study)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"study-{args.study}.html"
    path.write_text(study_page(data), encoding="utf-8")
    if data.parent is not None and not args.no_artifact:
        client.log_artifact(data.parent.info.run_id, str(path), "dashboard")
    print(f"study {args.study}: {path.resolve()}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("dashboard", help="plotly pages of paper vs measured per table, from MLflow")
    s.add_argument("tables", nargs="*", help="table numbers or experiment names (default: every table in MLflow)")
    s.add_argument("--out", default="dashboards/out", help="folder for the HTML pages (default: dashboards/out)")
    s.add_argument("--tracking-uri", help="MLflow store or server (default: MLFLOW_TRACKING_URI, else ./mlflow.db)")
    s.add_argument("--no-artifact", action="store_true", help="do not attach the page to the table's parent run")
    s.add_argument("--study", help="draw this Optuna study (assembled search) instead of tables")
    s.add_argument("--storage", help="the study's Optuna storage (default: optuna.db beside the MLflow store)")
    s.set_defaults(fn=cmd_dashboard)
