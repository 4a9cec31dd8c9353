"""What a dashboard shows, read from MLflow alone through the platform's results reader (the
same one ``assembled report`` uses): the table's latest manifest, each row's seeds, the per-row
summary (mean, std, gains with verdicts) and the per-epoch curves of every seed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from assembled.ablation.results import ResultsError, experiment_name, latest_parent, unit_runs
from assembled.ablation.summary import build_summary, unit_frame

if TYPE_CHECKING:  # annotations only: MLflow loads where a client is made
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

METRICS = ["top1", "mce", "mfr", "throughput"]
CURVES = ["loss", "top1", "recall_at_1", "lr"]  # recall_at_1: retrieval runs, in top-1's place
DashboardError = ResultsError  # a table that cannot be drawn (no experiment, parent run or manifest)

__all__ = ["CURVES", "METRICS", "DashboardError", "TableData", "default_uri", "experiment_name", "load_table"]


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else MLflow's own default: ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


@dataclass
class TableData:
    experiment: str
    parent: Run
    manifest: dict
    rows: pd.DataFrame  # one line per shown row: status, n, mean/std, paper_*, gains, ce_*/fr_* means
    units: pd.DataFrame  # one line per seed of a row: unit, row, status, run_id, metrics, tags read
    curves: pd.DataFrame  # unit, row, metric, epoch, value

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


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    by_step: dict[int, float] = {}
    for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
        by_step[m.step] = m.value  # a retried trial may log a step twice: the last value wins
    return sorted(by_step.items())


def load_table(client: MlflowClient, spec: str, curves: bool = True) -> TableData:
    """``curves=False`` skips the per-epoch histories (one query per seed and metric): the index."""
    experiment = experiment_name(spec)
    parent, manifest = latest_parent(client, experiment)
    exp_id = parent.info.experiment_id
    runs = unit_runs(client, exp_id, manifest)
    units = unit_frame(manifest, runs, exp_id)
    tags = {k: r.data.tags for k, r in runs.items()}
    units["eval_hash"] = [tags.get(u, {}).get("eval_hash", "untagged") for u in units["unit"]]
    units["mce_reference"] = [tags.get(u, {}).get("mce_reference", "") for u in units["unit"]]
    units["device"] = [tags.get(u, {}).get("device", "") for u in units["unit"]]
    rows = build_summary(manifest, units)
    by_row = {r["id"]: r for r in manifest["rows"]}
    rows["epochs"] = [by_row[r].get("epochs") for r in rows["row"]]
    rows["teacher"] = [by_row[r].get("teacher") for r in rows["row"]]
    history = []
    row_of = dict(zip(units["unit"], units["row"], strict=True))
    for key, run in runs.items() if curves else ():
        for metric in CURVES:
            for step, value in _history(client, run.info.run_id, metric):
                row = row_of.get(key, key)  # a run reused from another table keeps this table's row id
                history.append({"unit": key, "row": row, "metric": metric, "epoch": step, "value": value})
    return TableData(
        experiment,
        parent,
        manifest,
        rows,
        units,
        pd.DataFrame.from_records(history, columns=["unit", "row", "metric", "epoch", "value"]),
    )
