"""The paper-vs-measured table of an ablation, built from MLflow runs alone."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from ..data.corruptions import STANDARD
from ..data.perturbations import PERTURBATIONS
from .spec import ResolvedRow

COLUMNS = ["top1", "mce", "mfr", "throughput"]


def latest_runs(client: MlflowClient, experiment_id: str, hashes: dict[str, str]) -> dict[str, object]:
    """Newest child run per row whose config hash is the current one (any status)."""
    runs = client.search_runs(
        [experiment_id], "tags.row != ''", order_by=["attributes.start_time DESC"], max_results=5000
    )
    out: dict[str, object] = {}
    for r in runs:
        row = r.data.tags.get("row")
        if row in hashes and row not in out and r.data.tags.get("config_hash") == hashes[row]:
            out[row] = r
    return out


def _relative(run, base, prefix: str, names) -> float | None:
    if run is None or base is None:
        return None
    vals = []
    for n in names:
        a, b = run.data.metrics.get(f"{prefix}{n}"), base.data.metrics.get(f"{prefix}{n}")
        if a is None or not b:
            return None
        vals.append(100 * a / b)
    return sum(vals) / len(vals)


def build_summary(rows: list[ResolvedRow], runs: dict[str, object], baseline: str | None) -> pd.DataFrame:
    base = runs.get(baseline) if baseline else None
    records = []
    for row in rows:
        run = runs.get(row.id)
        m = run.data.metrics if run is not None else {}
        rec = {"row": row.id, "title": row.title, "status": run.info.status if run is not None else "NOT RUN"}
        for col in COLUMNS:
            rec[f"paper_{col}"] = getattr(row.paper, col)
            rec[col] = m.get(col)
        rec["throughput_ratio_r50"] = m.get("throughput_ratio_r50")
        rec["gmacs"] = m["macs"] / 1e9 if "macs" in m else None
        rec["params_m"] = m["params"] / 1e6 if "params" in m else None
        if baseline:
            rec[f"mce_vs_{baseline}"] = _relative(run, base, "cerr_", STANDARD)
            rec[f"mfr_vs_{baseline}"] = _relative(run, base, "fp_", PERTURBATIONS)
        if run is not None and run.info.status == "FAILED":
            rec["reason"] = run.data.tags.get("failure_reason", "").splitlines()[0][:200]
        records.append(rec)
    return pd.DataFrame.from_records(records)


def format_table(df: pd.DataFrame) -> str:
    shown = df.drop(columns=[c for c in ("title",) if c in df.columns])
    return shown.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="-")
