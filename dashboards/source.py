"""What a dashboard shows, read from MLflow alone: the table's latest parent run, its
``table.json`` manifest (every row, the paper's numbers, config hashes) and, per row, the
newest child run with that config hash (a row finished by an earlier invocation counts)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small JSON per table

METRICS = ["top1", "mce", "mfr", "throughput"]
CURVES = ["loss", "top1", "lr"]


class DashboardError(RuntimeError):
    """A table that cannot be drawn (no experiment, no parent run, no manifest)."""


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else MLflow's own default: ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def experiment_name(spec: str) -> str:
    """``7`` / ``07`` / ``table07`` -> ``table07``; any other name is taken as given."""
    s = str(spec)
    if s.isdigit():
        return f"table{int(s):02d}"
    m = re.fullmatch(r"table(\d+)", s)
    return f"table{int(m.group(1)):02d}" if m else s


@dataclass
class TableData:
    experiment: str
    parent: Run
    manifest: dict
    rows: pd.DataFrame  # one line per manifest row: status, paper_*, measured, ce_*, fr_*
    curves: pd.DataFrame  # row, metric, epoch, value

    @property
    def profile(self) -> str:
        return self.manifest.get("profile", self.parent.data.tags.get("profile", "?"))


def list_tables(client: MlflowClient) -> list[str]:
    """Experiments holding at least one ablation parent run (the user's own tables too)."""
    return sorted(
        e.name
        for e in client.search_experiments()
        if client.search_runs([e.experiment_id], "tags.kind = 'ablation'", max_results=1)
    )


def _manifest(client: MlflowClient, run: Run) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, "table.json", tmp)
        except Exception:
            return None
        return json.loads(Path(path).read_text())


def latest_parent(client: MlflowClient, experiment: str) -> tuple[Run, dict]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise DashboardError(f"no MLflow experiment '{experiment}' in {client.tracking_uri}: run the ablation first")
    parents = client.search_runs(
        [exp.experiment_id], "tags.kind = 'ablation'", order_by=["attributes.start_time DESC"], max_results=50
    )
    for run in parents:  # newest invocation that recorded its manifest
        manifest = _manifest(client, run)
        if manifest is not None:
            return run, manifest
    raise DashboardError(
        f"experiment '{experiment}' in {client.tracking_uri} has no ablation parent run with a table.json "
        "artifact: run `assembled ablation` for it (runs made before the manifest existed cannot be drawn)"
    )


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    by_step: dict[int, float] = {}
    for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
        by_step[m.step] = m.value  # a retried trial may log a step twice: the last value wins
    return sorted(by_step.items())


def load_table(client: MlflowClient, spec: str, curves: bool = True) -> TableData:
    """``curves=False`` skips the per-epoch histories (one query per row and metric): the index."""
    experiment = experiment_name(spec)
    parent, manifest = latest_parent(client, experiment)
    exp_id = parent.info.experiment_id
    children = client.search_runs(
        [exp_id], "tags.kind = 'trial'", order_by=["attributes.start_time DESC"], max_results=5000
    )
    newest: dict[tuple[str | None, str | None], Run] = {}
    for run in children:
        newest.setdefault((run.data.tags.get("row"), run.data.tags.get("config_hash")), run)
    records, history = [], []
    for row in manifest["rows"]:
        run = newest.get((row["id"], row["config_hash"]))
        rec: dict = {
            "row": row["id"],
            "title": row.get("title", ""),
            "reference": bool(row.get("reference")),
            "requested": row.get("requested", True),
            "status": run.info.status if run is not None else "NOT RUN",
            "run_id": run.info.run_id if run is not None else None,
            "epochs": row.get("epochs"),
            "teacher": row.get("teacher"),
            "reason": (run.data.tags.get("failure_reason", "") if run is not None else "").split("\n")[0][:160],
            "eval_hash": run.data.tags.get("eval_hash", "untagged") if run is not None else None,
        }
        for k, v in (row.get("paper") or {}).items():
            rec[f"paper_{k}"] = v
        if run is not None:
            m = run.data.metrics
            rec |= {k: v for k, v in m.items() if k in METRICS or k.startswith(("ce_", "fr_"))}
            rec["throughput_ratio_r50"] = m.get("throughput_ratio_r50")
            rec["gmacs"] = m["macs"] / 1e9 if "macs" in m else None
            rec["params_m"] = m["params"] / 1e6 if "params" in m else None
            for key in CURVES if curves else ():
                for step, value in _history(client, run.info.run_id, key):
                    history.append({"row": row["id"], "metric": key, "epoch": step, "value": value})
        records.append(rec)
    return TableData(
        experiment,
        parent,
        manifest,
        pd.DataFrame.from_records(records),
        pd.DataFrame.from_records(history, columns=["row", "metric", "epoch", "value"]),
    )
