"""``assembled ui``: the MLflow web UI over the project's store, bound to 127.0.0.1.

One uvicorn worker: each worker imports all of MLflow (about 5 s and 300 MB apiece), and
a single user does not need four; no job runner unless ``--jobs``. Artifacts are served by
the server (``--serve-artifacts``), so pages logged as artifacts (dashboards) open from the UI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..redact import redact

# MLflow 3.17's UI opens every experiment in its GenAI view (Traces, usage) unless the URL asks
# for the classic one; the choice is a per-browser setting (default "genai"), not the
# experiment's kind tag (measured in Chromium: a tagged experiment opened on GenAI too). Every
# link the platform prints carries it.
CLASSIC = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str | None = None) -> str:
    """The runs table of an experiment (or the experiment list) on an MLflow server (a link to
    print: a password in ``base`` is masked)."""
    base = redact(base)
    path = f"/#/experiments/{experiment_id}/runs" if experiment_id else "/#/experiments"
    return f"{base.rstrip('/')}{path}?{CLASSIC}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{redact(base).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{CLASSIC}"


def server_command(host: str, port: int, artifacts: Path) -> list[str]:
    """The server's command line. The backend store goes by environment (``server_env``), not
    here: a database URL's password on a command line is visible to every user in ``ps``."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [
        mlflow, "server", "--host", host, "--port", str(port), "--workers", "1",
        "--serve-artifacts", "--artifacts-destination", str(artifacts),
    ]  # fmt: skip


def server_env(uri: str, jobs: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_BACKEND_STORE_URI": uri}
    if not jobs:
        # MLflow 3's job execution (GenAI jobs: a job runner and one huey consumer per job type, 7
        # processes here) does nothing for these runs and is heavy on a 2-core laptop
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def cmd_ui(args: argparse.Namespace) -> int:
    from .health import check_store
    from .store import store_missing, tracking_uri

    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLFLOW_TRACKING_URI points at a tracking server: open {experiment_url(uri)} (nothing to start here)")
        return 0
    if store_missing(uri):
        print(f"note: {uri} does not exist yet; the UI starts empty until a run is logged there", file=sys.stderr)
    else:
        check_store(uri, write=False)  # MLflow's server would log a traceback per request instead
    cmd = server_command(args.host, args.port, Path(args.artifacts).resolve())
    url = experiment_url(f"http://{args.host}:{args.port}")
    print(f"MLflow UI for {redact(uri)}\n  -> {url}  (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(cmd, env=server_env(uri, args.jobs))
    except KeyboardInterrupt:
        return 0


def register(sub) -> None:
    s = sub.add_parser("ui", help="start the MLflow web UI over this project's runs (127.0.0.1)")
    s.add_argument("--port", type=int, default=int(os.environ.get("MLFLOW_PORT", 5000)))
    s.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 exposes it: see README)")
    s.add_argument("--artifacts", default="mlruns", help="where runs created through the server keep artifacts")
    s.add_argument("--jobs", action="store_true", help="also start MLflow's job runner (GenAI jobs; off: lighter)")
    s.set_defaults(fn=cmd_ui)
