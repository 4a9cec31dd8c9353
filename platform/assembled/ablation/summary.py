"""The results of a table from MLflow alone: each unit's (row x seed) run found by its tags, and
the per-row summary (mean, std and n over seeds; each gain with its 95% interval and verdict;
the paper's numbers beside). Read by the runner's summary, ``assembled report`` and the
dashboards, all from the table's manifest (``table.json``), so they agree by construction.

A run is found in the table's own experiment first; a unit with no FINISHED run there may use
a FINISHED run of the same config hash and evaluation identity from another table (Table 6's
T0 is Table 7's E0): the same experiment is not trained twice.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from ..robustness_sets import CORRUPTIONS as STANDARD
from ..robustness_sets import PERTURBATIONS
from .stats import (
    HIGHER_IS_BETTER,
    PAIRED,
    UNSURE,
    WELCH,
    Gain,
    paired,
    seeds_to_resolve,
    sign_agreement,
    spread,
    welch,
)
from .units import unit_key

if TYPE_CHECKING:  # annotations only: MLflow loads where a client is made
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

COLUMNS = ["top1", "mce", "mfr", "throughput"]
GAINS = ["top1", "mce", "mfr"]
# what each kind of table measures (its manifest's task): shown columns, and the ones gains are judged on
TASK_METRICS = {
    "classification": (COLUMNS, GAINS),
    "fgvc": (["top1", "mce", "throughput"], ["top1", "mce"]),  # mCE unnormalised on the target data
    "retrieval": (["recall_at_1", "throughput"], ["recall_at_1"]),
}
ALL_GAINS = ["top1", "mce", "mfr", "recall_at_1"]


def task_metrics(manifest: dict) -> tuple[list[str], list[str]]:
    return TASK_METRICS[manifest.get("task", "classification")]


PER_ITEM = ("ce_", "fr_", "cerr_", "fp_", "t5d_")  # per-corruption / per-perturbation metrics


# -- finding runs ------------------------------------------------------------------------------
def latest_runs(client: MlflowClient, experiment_id: str, units: dict[str, tuple[str, str]]) -> dict[str, Run]:
    """Newest run (any status) of each unit in the experiment, found by tags row + config_hash
    (units with the same pair, a row identical to an earlier one, share that run)."""
    keys_of: dict[tuple[str, str], list[str]] = {}
    for k, v in units.items():
        keys_of.setdefault(v, []).append(k)
    runs = client.search_runs(
        [experiment_id], "tags.row != ''", order_by=["attributes.start_time DESC"], max_results=5000
    )
    out: dict[str, Run] = {}
    for r in runs:
        for key in keys_of.get((r.data.tags.get("row"), r.data.tags.get("config_hash")), []):
            out.setdefault(key, r)
    return out


def reusable_runs(
    client: MlflowClient, experiment_id: str, units: dict[str, tuple[str, str]], eval_id: str
) -> dict[str, Run]:
    """FINISHED runs of other tables' experiments with a unit's config hash and this evaluation
    identity: the same experiment, already done."""
    others = [e.experiment_id for e in client.search_experiments() if e.experiment_id != experiment_id]
    wanted: dict[str, list[str]] = {}
    for k, (_, h) in units.items():
        wanted.setdefault(h, []).append(k)
    out: dict[str, Run] = {}
    for i in range(0, len(others), 100):  # MLflow takes at most 100 experiments per search
        found = client.search_runs(
            others[i : i + 100],
            "tags.kind = 'trial' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=5000,
        )
        for r in found:
            if r.data.tags.get("eval_hash") != eval_id:
                continue
            for key in wanted.get(r.data.tags.get("config_hash", ""), []):
                out.setdefault(key, r)
    return out


def table_runs(
    client: MlflowClient, experiment_id: str, units: dict[str, tuple[str, str]], eval_id: str | None
) -> dict[str, Run]:
    """Each unit's run: its own newest, or, where that is not FINISHED, a reusable one."""
    own = latest_runs(client, experiment_id, units) if experiment_id else {}
    missing = {k: v for k, v in units.items() if k not in own or own[k].info.status != "FINISHED"}
    if missing and eval_id:
        own |= reusable_runs(client, experiment_id, missing, eval_id)
    return own


def manifest_units(manifest: dict) -> dict[str, tuple[str, str]]:
    """unit key -> (row, config hash) of a manifest (manifests before repeats: one unit a row)."""
    out = {}
    for row in manifest["rows"]:
        for u in row.get("units") or [{"repeat": 0, "config_hash": row["config_hash"]}]:
            owner = u["same_as"].split("@")[0] if u.get("same_as") else row["id"]  # an identical row's run
            out[unit_key(row["id"], u["repeat"])] = (owner, u["config_hash"])
    return out


# -- one line per unit -------------------------------------------------------------------------
def unit_frame(manifest: dict, runs: dict[str, Run], experiment_id: str | None = None) -> pd.DataFrame:
    records = []
    for key, (row, _) in manifest_units(manifest).items():
        run = runs.get(key)
        rec: dict = {"unit": key, "row": row, "status": run.info.status if run else "NOT RUN"}
        if run is not None:
            rec |= {"run_id": run.info.run_id, "seed": run.data.params.get("seed")}
            if experiment_id and run.info.experiment_id != experiment_id:
                rec["reused_from"] = f"table {run.data.tags.get('table', '?')} {run.data.tags.get('row', '?')}"
            if run.data.tags.get("data.num_classes"):
                rec["num_classes"] = float(run.data.tags["data.num_classes"])
            if run.data.tags.get("data.val_images"):
                rec["val_images"] = float(run.data.tags["data.val_images"])
            if run.info.status == "FINISHED":
                rec |= run.data.metrics
            elif run.info.status == "FAILED":
                rec["reason"] = run.data.tags.get("failure_reason", "").split("\n")[0][:200]
        records.append(rec)
    return pd.DataFrame.from_records(records)


# -- one line per row --------------------------------------------------------------------------
def comparisons(manifest: dict) -> dict[str, str]:
    """Which row each row is judged against: a row's own ``vs`` ('none': not judged), else in
    ``stacked`` tables the row it adds to (its base, else the previous non-reference row), in
    ``alternatives`` tables the baseline. Reference models and rows from other tables (extra KD
    teachers) are judged only in ``alternatives`` tables."""
    rows = [r for r in manifest["rows"] if r.get("table_row", True)]
    ids = {r["id"] for r in rows}
    baseline = manifest.get("baseline") or next((r["id"] for r in rows if not r.get("reference")), None)
    out: dict[str, str] = {}
    if manifest.get("kind") == "stacked":
        prev = None
        for r in rows:
            if r.get("reference"):
                continue
            target = r.get("base") if r.get("base") in ids else prev
            if target:
                out[r["id"]] = target
            prev = r["id"]
    elif baseline:
        out = {r["id"]: baseline for r in rows if r["id"] != baseline}
    for r in rows:
        if r.get("vs") == "none":
            out.pop(r["id"], None)
        elif r.get("vs") in ids:
            out[r["id"]] = r["vs"]
    return out


def _status(statuses: list[str]) -> str:
    if not statuses:
        return "NOT RUN"
    if len(set(statuses)) == 1:
        return statuses[0]
    counts = pd.Series(statuses).value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _relative(mine: dict, base: dict, prefix: str, names) -> tuple[float | None, int]:
    """Mean of 100 * row / baseline over the names the baseline can normalise (a baseline value
    of 0, e.g. a flip rate nobody flips on, cannot), and how many those were."""
    vals = [
        100 * mine[f"{prefix}{n}"] / base[f"{prefix}{n}"]
        for n in names
        if pd.notna(mine.get(f"{prefix}{n}")) and base.get(f"{prefix}{n}")
    ]
    return (sum(vals) / len(vals) if vals else None), len(vals)


def build_summary(manifest: dict, units: pd.DataFrame) -> pd.DataFrame:
    """One line per shown row: mean/std/n of each metric over its finished seeds, the paper's
    numbers, the gain over the row it is judged against with a 95% interval and a verdict."""
    shown = [r for r in manifest["rows"] if r.get("requested", True) or r.get("paper_only")]
    done = units[units["status"] == "FINISHED"] if "status" in units else units
    values = {r["id"]: done[done["row"] == r["id"]] for r in shown}
    means = {rid: v.mean(numeric_only=True).to_dict() for rid, v in values.items()}
    baseline = manifest.get("baseline")
    against = comparisons(manifest)
    columns, _ = task_metrics(manifest)
    records = []
    for r in shown:
        rid, mine = r["id"], values[r["id"]]
        statuses = list(units.loc[units["row"] == rid, "status"]) if "row" in units else []
        rec: dict = {
            "row": rid,
            "title": r.get("title", ""),
            "reference": bool(r.get("reference")),
            "status": "paper only" if r.get("paper_only") else _status([s for s in statuses if s != "NOT RUN"]),
            "n": len(mine),
            "seeds": len(statuses),
        }
        for col in columns:
            s = spread(list(mine[col]) if col in mine else [])
            rec[col], rec[f"{col}_std"] = s.mean, s.std
            rec[f"paper_{col}"] = (r.get("paper") or {}).get(col)
        m = means[rid]
        rec["throughput_reliable"] = timing_reliable(mine)
        # a ratio is printed only where both timings held still (stated bound: evaluation/protocol.py)
        rec["throughput_ratio_r50"] = m.get("throughput_ratio_r50") if rec["throughput_reliable"] else None
        rec["gmacs"] = m["macs"] / 1e9 if pd.notna(m.get("macs")) else None
        rec["params_m"] = m["params"] / 1e6 if pd.notna(m.get("params")) else None
        # a transfer table's backbones (not its rows) saw other data: their errors do not compare
        other_data = manifest.get("task", "classification") != "classification" and not r.get("table_row", True)
        if baseline and baseline in means and not other_data and not near_chance(values[baseline]):
            _vs_baseline(rec, m, means[baseline], baseline)
        if rid in against:
            _gain(rec, r, mine, against[rid], values.get(against[rid]), manifest)
        if manifest.get("kind") == "stacked" and baseline in values and rid != baseline and not r.get("reference"):
            _gain(rec, r, mine, baseline, values[baseline], manifest, p="base_")  # the relative view
        flags = health_flags(mine)
        if "throughput" in mine and mine["throughput"].notna().any() and not rec["throughput_reliable"]:
            flags = "; ".join(f for f in (flags, "throughput unreliable (timings varied)") if f)
        if flags:
            rec["flags"] = flags
        for col in ("reason", "reused_from"):  # a failed seed's reason; where reused runs come from
            found = units.loc[units["row"] == rid, col].dropna() if col in units else []
            if len(found):
                rec[col] = ", ".join(sorted(set(map(str, found))))
        rec |= {k: v for k, v in m.items() if k.startswith(PER_ITEM) or (k.startswith("recall_at_") and k not in rec)}
        records.append(rec)
    return pd.DataFrame.from_records(records)


def health_flags(finished: pd.DataFrame) -> str:
    """Why a row's numbers may not mean what they seem: a model at chance or predicting one
    class "never flips" (mFR 0) and has flat corruption errors; a non-finite loss is no result."""
    flags = []
    if "top1" in finished and "num_classes" in finished and len(finished):
        chance = 100 / finished["num_classes"]
        n = int((finished["top1"] <= 1.2 * chance).sum())
        if n:
            flags.append(f"near chance ({n}/{len(finished)} seeds)")
    if "val_pred_classes" in finished:
        n = int((finished["val_pred_classes"] <= 1).sum())
        if n:
            flags.append(f"constant predictions ({n}/{len(finished)} seeds)")
    retrieval = "recall_at_1" in finished and finished["recall_at_1"].notna().all()
    for col in ("loss",) if retrieval else ("loss", "val_loss"):  # retrieval has no validation loss
        if col in finished:
            n = int((~finished[col].apply(lambda v: pd.notna(v) and math.isfinite(v))).sum())
            if n:
                flags.append(f"non-finite {col} ({n}/{len(finished)} seeds)")
    return "; ".join(flags)


def timing_reliable(finished: pd.DataFrame) -> bool:
    """Every seed's timing and its R50's held still (runs timed before the check count as not)."""
    col = "throughput_ratio_reliable"
    return bool(len(finished)) and col in finished and bool((finished[col] == 1).all())


def near_chance(finished: pd.DataFrame) -> bool:
    """Some seed of the row ended at chance: what is judged against it (gains, errors relative to
    it) would be void, however it is printed."""
    if "top1" not in finished or "num_classes" not in finished or not len(finished):
        return False
    return bool((finished["top1"] <= 1.2 * 100 / finished["num_classes"]).any())


def _vs_baseline(rec: dict, mine: dict, base: dict, baseline: str) -> None:
    rec[f"mce_vs_{baseline}"] = _relative(mine, base, "cerr_", STANDARD)[0]
    for key, prefix in (("mfr", "fp_"), ("mt5d", "t5d_")):
        value, n = _relative(mine, base, prefix, PERTURBATIONS)
        rec[f"{key}_vs_{baseline}"] = value
        if value is not None and n < len(PERTURBATIONS):
            rec[f"{key}_vs_{baseline}_n"] = n  # normalised over n of the 10 perturbations


def _gain(
    rec: dict, row: dict, mine: pd.DataFrame, target: str, theirs: pd.DataFrame | None, manifest: dict, p: str = ""
) -> None:
    """Columns ``{p}d_<metric>`` (+ ``_lo``/``_hi``), ``{p}<metric>_verdict``, ``paper_{p}d_<metric>``
    and the throughput cost, of ``row`` over ``target``."""
    rec[f"{p}vs"] = target
    paper_of = {r["id"]: r.get("paper") or {} for r in manifest["rows"]}
    void = theirs is not None and near_chance(theirs)
    for col in task_metrics(manifest)[1]:
        if void:  # a gain over a model that learned nothing measures nothing
            g = Gain(None, None, None, f"void ({target} near chance)")
        elif row.get("same_as") == target:
            g = Gain(0.0, None, None, f"same config as {target}")
        elif row.get("trained_by") == target and theirs is not None and col in mine and col in theirs:
            g = paired(_by_repeat(mine, col), _by_repeat(theirs, col), HIGHER_IS_BETTER[col], _step(col, mine, theirs))
            rec[f"{p}{col}_test"] = PAIRED
        elif (pairs := _seed_pairs(mine, theirs, col)) is not None:
            g = paired(*pairs, HIGHER_IS_BETTER[col], _step(col, mine, theirs))
            rec[f"{p}{col}_test"] = PAIRED
        else:
            a = list(mine[col]) if col in mine else []
            b = list(theirs[col]) if theirs is not None and col in theirs else []
            g = welch(a, b, HIGHER_IS_BETTER[col])
            rec[f"{p}{col}_test"] = WELCH
        rec[f"{p}d_{col}"], rec[f"{p}d_{col}_lo"], rec[f"{p}d_{col}_hi"] = g.delta, g.lo, g.hi
        rec[f"{p}{col}_verdict"] = g.verdict
        if g.verdict == UNSURE and g.delta is not None and g.diff_std is not None:
            rec[f"{p}{col}_seeds_needed"] = seeds_to_resolve(g.delta, g.diff_std)  # None: over 1000
        p_new, p_old = paper_of[row["id"]].get(col), paper_of.get(target, {}).get(col)
        rec[f"paper_{p}d_{col}"] = p_new - p_old if p_new is not None and p_old is not None else None
    both_steady = rec.get("throughput_reliable") and theirs is not None and timing_reliable(theirs)
    t_new = rec.get("throughput") if both_steady else None
    t_old = _num(theirs["throughput"].mean()) if both_steady and "throughput" in theirs else None
    rec[f"{p}throughput_cost"] = t_new / t_old if t_new and t_old else None  # img/s relative to the target
    p_new, p_old = paper_of[row["id"]].get("throughput"), paper_of.get(target, {}).get("throughput")
    rec[f"paper_{p}throughput_cost"] = p_new / p_old if p_new and p_old else None


def _seed_pairs(
    mine: pd.DataFrame, theirs: pd.DataFrame | None, col: str
) -> tuple[dict[str, float], dict[str, float]] | None:
    """Both rows' metric keyed by training seed, when they share at least two seeds with a value
    on each side: a repeat trains every row with the same seed (the same data order, augmentation
    draws and, where shapes match, initial weights), so the rows are not independent samples and
    the paired interval is the valid one (narrower than Welch's when the rows move together over
    seeds: top-1 correlation +0.90 to +0.95 in one cifar-cpu run of Table 6, -0.37 to +0.87 in
    another). ``None`` (Welch instead) otherwise."""
    if theirs is None or col not in mine or col not in theirs or "seed" not in mine or "seed" not in theirs:
        return None
    a, b = _by_seed(mine, col), _by_seed(theirs, col)
    shared = [s for s in a if s in b]
    if len(shared) < 2:
        return None
    return {s: a[s] for s in shared}, {s: b[s] for s in shared}


def _by_seed(finished: pd.DataFrame, col: str) -> dict[str, float]:
    return {
        str(s): float(v)
        for s, v in zip(finished["seed"], finished[col], strict=True)
        if isinstance(s, str) and s and v is not None and not pd.isna(v) and math.isfinite(float(v))
    }


def _step(col: str, mine: pd.DataFrame, theirs: pd.DataFrame | None) -> float:
    """The resolution of a top-1 / top-5 read on N validation images (100/N points; the
    smallest N of either row), 0 for the other metrics (means over many images and sets)."""
    if col not in ("top1", "top5"):
        return 0.0
    sizes = [f["val_images"].min() for f in (mine, theirs) if f is not None and "val_images" in f]
    sizes = [n for n in sizes if pd.notna(n) and n > 0]
    return 100.0 / min(sizes) if sizes else 0.0


def _by_repeat(finished: pd.DataFrame, col: str) -> dict[int, float]:
    """A metric per seed, keyed by the repeat (unit ``E3@2`` -> 2): how paired seeds meet."""
    return {int(u.partition("@")[2] or 0): v for u, v in zip(finished["unit"], finished[col], strict=True)}


def agreement(summary: pd.DataFrame) -> dict[str, str]:
    """Per metric with a paper gain, how many of the resolvable steps agree in sign with it."""
    out = {}
    for col in ALL_GAINS:
        if f"paper_d_{col}" not in summary or summary[f"paper_d_{col}"].isna().all():
            continue
        steps = [
            (Gain(_num(r[f"d_{col}"]), None, None, r[f"{col}_verdict"]), _num(r[f"paper_d_{col}"]))
            for r in summary.to_dict("records")
            if isinstance(r.get(f"{col}_verdict"), str)
        ]
        out[col] = str(sign_agreement(steps))
    return out


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def summary_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The summary CSV: everything but the per-corruption / per-perturbation means and the
    vs-baseline view of stacked tables (the dashboards draw it)."""
    return df[[c for c in df.columns if not c.startswith((*PER_ITEM, "base_", "paper_base_"))]]
