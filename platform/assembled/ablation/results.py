"""A table's results from MLflow alone: its newest invocation's manifest (``table.json`` of the
latest parent run, optionally of one profile), each unit's run, and the per-row summary.
``assembled report`` and the dashboards read through here; neither needs the YAML."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .summary import build_summary, manifest_units, table_runs, unit_frame

if TYPE_CHECKING:  # annotations only: MLflow loads where a client is made
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small JSON per table


class ResultsError(LookupError):
    """A table with nothing to show (no experiment, no parent run, no manifest)."""


def experiment_name(spec: str) -> str:
    """``7`` / ``07`` / ``table07`` -> ``table07``; a YAML path -> its stem; any other name as given."""
    s = str(spec)
    if s.isdigit():
        return f"table{int(s):02d}"
    m = re.fullmatch(r"table(\d+)", s)
    if m:
        return f"table{int(m.group(1)):02d}"
    return Path(s).stem if s.endswith((".yaml", ".yml")) else s


def _manifest(client: MlflowClient, run: Run) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, "table.json", tmp)
        except Exception:
            return None
        return json.loads(Path(path).read_text())


def latest_parent(client: MlflowClient, experiment: str, profile: str | None = None) -> tuple[Run, dict]:
    """The newest invocation (of ``profile``, when given) that recorded its manifest."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ResultsError(f"no MLflow experiment '{experiment}' in {client.tracking_uri}: run the ablation first")
    query = "tags.kind = 'ablation'" + (f" and tags.profile = '{profile}'" if profile else "")
    parents = client.search_runs([exp.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=50)
    for run in parents:
        manifest = _manifest(client, run)
        if manifest is not None:
            return run, manifest
    which = f" with profile '{profile}'" if profile else ""
    raise ResultsError(
        f"experiment '{experiment}' in {client.tracking_uri} has no ablation parent run{which} with a table.json "
        "artifact: run `assembled ablation` for it (runs made before the manifest existed cannot be read)"
    )


def unit_runs(client: MlflowClient, experiment_id: str, manifest: dict) -> dict[str, Run]:
    return table_runs(client, experiment_id, manifest_units(manifest), manifest.get("eval_hash"))


def load_results(spec: str, profile: str | None = None, uri: str | None = None) -> tuple[dict, pd.DataFrame]:
    from ..tracking.store import read_only_client, tracking_uri

    uri = uri or tracking_uri()
    client = read_only_client(uri)
    if client is None:
        raise ResultsError(f"no MLflow store at {uri}: run the ablation first (or set MLFLOW_TRACKING_URI)")
    parent, manifest = latest_parent(client, experiment_name(spec), profile)
    exp_id = parent.info.experiment_id
    units = unit_frame(manifest, unit_runs(client, exp_id, manifest), exp_id)
    return manifest, build_summary(manifest, units)
