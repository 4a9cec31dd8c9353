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


def _relative(run, base, prefix: str, names) -> tuple[float | None, int]:
    """Mean of 100 * run / baseline over the names the baseline can normalise (a baseline
    value of 0, e.g. a flip rate nobody flips on, cannot), and how many those were."""
    if run is None or base is None:
        return None, 0
    vals = []
    for n in names:
        a, b = run.data.metrics.get(f"{prefix}{n}"), base.data.metrics.get(f"{prefix}{n}")
        if a is not None and b:
            vals.append(100 * a / b)
    return (sum(vals) / len(vals) if vals else None), len(vals)


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
            rec[f"mce_vs_{baseline}"] = _relative(run, base, "cerr_", STANDARD)[0]
            for key, prefix in (("mfr", "fp_"), ("mt5d", "t5d_")):
                value, n = _relative(run, base, prefix, PERTURBATIONS)
                rec[f"{key}_vs_{baseline}"] = value
                if run is not None and value is not None and n < len(PERTURBATIONS):
                    rec[f"{key}_vs_{baseline}_n"] = n  # normalised over n of the 10 perturbations
        if run is not None and run.info.status == "FAILED":
            rec["reason"] = run.data.tags.get("failure_reason", "").splitlines()[0][:200]
        records.append(rec)
    return pd.DataFrame.from_records(records)


def format_table(df: pd.DataFrame) -> str:
    """The terminal table: missing values as '-', paper columns without any number dropped,
    GMACs and params with three significant digits (toy models have 0.004 GMACs)."""
    shown = df.drop(columns=[c for c in ("title",) if c in df.columns])
    for c in shown.columns:
        if c.startswith("paper_"):
            shown[c] = pd.to_numeric(shown[c], errors="coerce")
    shown = shown.drop(columns=[c for c in shown.columns if c.startswith("paper_") and shown[c].isna().all()])
    digits = {c: (lambda v: "-" if pd.isna(v) else f"{v:.3g}") for c in ("gmacs", "params_m") if c in shown}
    return shown.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="-", formatters=digits)
