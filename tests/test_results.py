"""Judging a table from its seeds: Welch intervals checked against SciPy's own Welch test, the
verdicts and the sign agreement, which row each row is judged against, the per-row summary and
its renderings, flags, and plans with repeats. Pure: no Ray, no MLflow."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from assembled.ablation.plan import build_plan
from assembled.ablation.report import latex, markdown, results_cells, terminal, text
from assembled.ablation.stats import (
    HELPS,
    HURTS,
    PAIRED,
    SINGLE,
    UNSURE,
    WELCH,
    Gain,
    paired,
    seeds_to_resolve,
    sign_agreement,
    spread,
    welch,
)
from assembled.ablation.summary import agreement, build_summary, comparisons, health_flags
from assembled.ablation.units import REPEAT_SEED_STEP, unit_key

from .conftest import ROOT


@pytest.mark.parametrize(
    "new, old",
    [([70.1, 71.3, 69.8], [68.0, 68.9, 67.5, 68.2]), ([30.0, 45.0], [20.0, 22.0]), ([1.0, 1.1, 0.9], [1.0, 1.2])],
)
def test_welch_interval_is_scipys(new, old):
    ref = scipy_stats.ttest_ind(new, old, equal_var=False).confidence_interval(0.95)
    g = welch(new, old, higher_is_better=True)
    assert g.delta == pytest.approx(sum(new) / len(new) - sum(old) / len(old))
    assert (g.lo, g.hi) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_verdicts_follow_the_interval_and_the_metric_direction():
    better, worse = [80.0, 80.5, 79.8], [70.0, 70.4, 69.9]
    assert welch(better, worse, True).verdict == HELPS
    assert welch(worse, better, True).verdict == HURTS
    assert welch(better, worse, False).verdict == HURTS  # a higher mCE is worse
    assert welch([70.0, 90.0], [75.0, 85.0], True).verdict == UNSURE
    assert welch([80.0], [70.0, 71.0], True).verdict == SINGLE  # one seed never decides
    assert welch([], [70.0], True).delta is None
    assert welch([5.0, 5.0], [4.0, 4.0], True).verdict == HELPS  # deterministic values: judged on their sign
    assert welch([float("nan"), 3.0], [1.0], True) == Gain(2.0, None, None, SINGLE)
    s = spread([1.0, 3.0])
    assert (s.mean, s.std, s.n) == (2.0, math.sqrt(2), 2)


def test_sign_agreement_counts_only_resolved_steps_with_a_paper_gain():
    steps = [
        (Gain(1.0, 0.5, 1.5, HELPS), 0.5),  # agrees
        (Gain(-1.0, -1.5, -0.5, HURTS), 0.4),  # disagrees
        (Gain(0.3, -1.0, 1.6, UNSURE), 0.2),  # not resolved
        (Gain(2.0, 1.0, 3.0, HELPS), None),  # no paper gain
    ]
    a = sign_agreement(steps)
    assert (a.agree, a.resolved, a.with_paper) == (1, 2, 3)
    assert "1/2 resolved steps agree" in str(a)


def _manifest(kind: str) -> dict:
    rows = [
        {"id": "R", "reference": True, "paper": {"top1": 80.0}},
        {"id": "A", "paper": {"top1": 76.0, "mce": 75.0, "throughput": 500}},
        {"id": "B", "base": "A", "paper": {"top1": 77.0, "mce": 74.0, "throughput": 450}},
        {"id": "C", "paper": {"top1": 76.5, "mce": 76.0, "throughput": 400}},
        {"id": "D", "base": "B", "paper": {"top1": 78.0}},
    ]
    for r in rows:
        r["units"] = [{"repeat": k, "config_hash": f"{r['id']}{k}"} for k in range(3)]
    return {"table": "x", "title": "t", "baseline": "A", "kind": kind, "repeats": 3, "rows": rows}


def test_rows_are_judged_by_table_kind():
    assert comparisons(_manifest("stacked")) == {"B": "A", "C": "B", "D": "B"}  # base, else previous
    assert comparisons(_manifest("alternatives")) == {"R": "A", "B": "A", "C": "A", "D": "A"}
    # a row's own vs wins (Tables 11/13: each dataset's Assemble row against that dataset's R50 row)
    m = _manifest("stacked")
    m["rows"][3]["vs"] = "A"  # C
    m["rows"][4]["vs"] = "none"  # D
    assert comparisons(m) == {"B": "A", "C": "A"}


def _units(values: dict[str, list[float]]) -> pd.DataFrame:
    recs = []
    for row, tops in values.items():
        for k, top1 in enumerate(tops):
            recs.append(
                {"unit": unit_key(row, k), "row": row, "status": "FINISHED", "top1": top1, "mce": 100 - top1,
                 "throughput": 100.0, "num_classes": 10.0, "val_pred_classes": 10.0}
            )  # fmt: skip
    return pd.DataFrame.from_records(recs)


def test_summary_means_gains_and_renderings():
    m = _manifest("stacked")
    units = _units({"R": [90, 91, 92], "A": [60, 61, 62], "B": [70, 71, 72], "C": [60, 75, 90], "D": [71, 71.5]})
    failed = {"unit": "D@2", "row": "D", "status": "FAILED", "reason": "TrainingDiverged: nan"}
    units = pd.concat([units, pd.DataFrame([failed])], ignore_index=True)
    s = build_summary(m, units).set_index("row")
    assert s.loc["A", "top1"] == 61 and s.loc["A", "top1_std"] == 1 and s.loc["A", "n"] == 3
    assert s.loc["D", "n"] == 2 and s.loc["D", "seeds"] == 3 and "FAILED" in s.loc["D", "status"]
    assert "TrainingDiverged" in s.loc["D", "reason"]
    assert s.loc["B", "vs"] == "A" and s.loc["B", "top1_verdict"] == HELPS and s.loc["B", "mce_verdict"] == HELPS
    assert s.loc["B", "paper_d_top1"] == 1.0 and s.loc["B", "paper_throughput_cost"] == 0.9
    assert s.loc["C", "top1_verdict"] == UNSURE  # the noisy row cannot be told apart
    assert s.loc["B", "base_vs"] == "A" and s.loc["C", "base_d_top1"] == pytest.approx(14.0)  # relative view
    assert agreement(s.reset_index())["top1"].startswith("1/1")  # B helps as the paper says; C unresolved
    summary = s.reset_index()
    out = terminal(m, summary, agreement(summary))
    assert "61.00 ± 1.00" in out and "helps" in out and "cannot tell" in out and "None" not in out
    assert "| B | A | +10.00 [" in markdown(m, summary)
    assert r"61.00 $\pm$ 1.00" in latex(m, summary, agreement(summary))
    cells = results_cells(summary, "A")
    assert cells[0]["row"] == "R (ref)" and "paper mfr" not in text(cells)  # empty paper columns dropped
    assert "mCE: the mean" not in out  # an older manifest does not say which mean: nothing invented
    m["mce_mean"] = "19 corruptions (the 15 standard + the official code's 4 extras, as the paper)"
    assert "mCE: the mean over 19 corruptions" in terminal(m, summary, agreement(summary))
    assert "- mCE: the mean over 19 corruptions" in markdown(m, summary)


def test_health_flags_catch_models_that_only_look_robust():
    ok = pd.DataFrame({"top1": [60.0], "num_classes": [10.0], "val_pred_classes": [10.0], "loss": [1.0]})
    assert health_flags(ok) == ""
    chance = pd.DataFrame({"top1": [25.0, 60.0], "num_classes": [4.0, 4.0], "val_pred_classes": [1.0, 4.0]})
    assert health_flags(chance) == "near chance (1/2 seeds); constant predictions (1/2 seeds)"
    assert "non-finite loss (1/1" in health_flags(pd.DataFrame({"loss": [float("nan")]}))


def test_plan_with_repeats_units_seeds_and_teachers():
    plan = build_plan("7", "smoke", repeats=3)
    assert plan.repeats == 3
    seeds = [u.cfg.seed for u in plan.units_of("E7")]
    assert seeds == [0, REPEAT_SEED_STEP, 2 * REPEAT_SEED_STEP]
    hashes = {u.cfg.config_hash() for u in plan.units_of("E7")}
    assert len(hashes) == 3
    assert {u.teacher for u in plan.units_of("E7")} == {"E6"}  # every seed distils from the teacher's first
    assert plan.rows["E0"].cfg.config_hash() == build_plan("7", "smoke").rows["E0"].cfg.config_hash()
    assert len(plan.wanted) == 3 * len(plan.table_rows)
    only = build_plan("7", "smoke", rows=["E3"], repeats=2)
    assert set(only.wanted) == {"E3", "E3@1"}
    assert build_plan("7", "smoke").repeats == 1


def test_repeats_come_from_the_cli_then_the_table_then_the_profile(tmp_path):
    profiles = (ROOT / "ablations" / "profiles.yaml").read_text().replace("smoke:\n", "smoke:\n  repeats: 2\n")
    (tmp_path / "profiles.yaml").write_text(profiles)
    table = (ROOT / "ablations" / "table06.yaml").read_text()
    (tmp_path / "t.yaml").write_text(table)
    assert build_plan(str(tmp_path / "t.yaml"), "smoke", ablations_dir=tmp_path).repeats == 2  # profile
    (tmp_path / "t.yaml").write_text(table.replace("kind: stacked", "kind: stacked\nrepeats: 4"))
    assert build_plan(str(tmp_path / "t.yaml"), "smoke", ablations_dir=tmp_path).repeats == 4  # table
    assert build_plan(str(tmp_path / "t.yaml"), "smoke", ablations_dir=tmp_path, repeats=5).repeats == 5


def test_paired_gain_is_scipys_paired_t_interval():
    new, old = {0: 71.2, 1: 69.9, 2: 73.0}, {0: 70.1, 1: 68.6, 2: 71.8}
    ref = scipy_stats.ttest_rel([71.2, 69.9, 73.0], [70.1, 68.6, 71.8]).confidence_interval(0.95)
    g = paired(new, old, higher_is_better=True)
    assert (g.lo, g.hi) == (pytest.approx(ref.low), pytest.approx(ref.high)) and g.verdict == HELPS
    # unpaired, the seeds' spread (1.5 points) swamps the 1.2-point step; paired it is resolved
    assert welch(list(new.values()), list(old.values()), True).verdict == UNSURE
    assert paired({0: 1.0}, {0: 0.5}, True).verdict == SINGLE


def test_equal_per_seed_differences_keep_the_metric_s_resolution():
    """Table 7's E4 over E3 under the cpu profile: top-1 on 500 images (0.2-point steps) gave
    +5.80 on both seeds and a zero-width interval. Each value is known to half a step, so the
    differences' std is at least a difference's rounding error, 0.2 / sqrt(6)."""
    e4, e3 = {0: 37.4, 1: 34.4}, {0: 31.6, 1: 28.6}
    assert paired(e4, e3, True).lo == paired(e4, e3, True).hi  # the old, lying interval
    g = paired(e4, e3, True, step=0.2)
    half = scipy_stats.t.ppf(0.975, 1) * (0.2 / math.sqrt(6)) / math.sqrt(2)  # 0.734
    assert (g.lo, g.hi) == (pytest.approx(5.8 - half), pytest.approx(5.8 + half)) and g.verdict == HELPS
    # spread above the floor is left alone
    assert paired({0: 37.4, 1: 34.0}, e3, True, step=0.2) == paired({0: 37.4, 1: 34.0}, e3, True)
    # the summary takes the step from the runs' validation size
    units = _units({"R": [90, 91], "A": [31.6, 28.6], "B": [37.4, 34.4], "C": [50, 51], "D": [1, 2]})
    units["seed"] = [str(k) for k in range(2)] * 5
    s = build_summary(_manifest("stacked"), units).set_index("row")
    assert s.loc["B", "d_top1_lo"] == s.loc["B", "d_top1_hi"]
    units["val_images"] = 500.0
    s = build_summary(_manifest("stacked"), units).set_index("row")
    assert s.loc["B", "d_top1_lo"] == pytest.approx(5.8 - half) and s.loc["B", "top1_verdict"] == HELPS


def test_seeds_to_resolve_a_step_follow_the_t_table():
    # t(0.975) by degrees of freedom, from the printed table: 5 -> 2.571, 6 -> 2.447, 15 -> 2.131,
    # 16 -> 2.120. A step as large as its per-seed sd: 6 seeds give 2.571/sqrt(6) = 1.050 (not
    # resolved), 7 give 2.447/sqrt(7) = 0.925. Half as large: 16 give 2.131/4 = 0.533, 17 give
    # 2.120/sqrt(17) = 0.514 >= 0.5, 18 give 2.110/sqrt(18) = 0.497.
    assert seeds_to_resolve(1.0, 1.0) == 7 and seeds_to_resolve(-1.0, 1.0) == 7
    assert seeds_to_resolve(0.5, 1.0) == 18
    assert seeds_to_resolve(0.01, 1.0) is None  # over 1000 seeds: not worth it
    assert seeds_to_resolve(0.0, 1.0) is None and seeds_to_resolve(1.0, 0.0) == 2


def test_rows_trained_with_the_same_seeds_are_judged_seed_by_seed():
    # each seed moves both rows (as a seed's data order does): the per-seed step is +1.0 +- 0.1,
    # the seeds' own spread 3 points; unpaired the step is lost in it, paired it is resolved
    a, b = [60.0, 63.0, 66.0, 69.0], [61.1, 63.9, 67.0, 70.1]
    units = _units({"R": [90, 91, 92, 93], "A": a, "B": b, "C": [60, 75, 90, 70], "D": [71, 72, 73, 74]})
    units["seed"] = [str(42 + 10_007 * int(u.partition("@")[2] or 0)) for u in units["unit"]]
    s = build_summary(_manifest("stacked"), units).set_index("row")
    ref = scipy_stats.ttest_rel(b, a).confidence_interval(0.95)
    assert s.loc["B", "top1_test"] == PAIRED and s.loc["B", "top1_verdict"] == HELPS
    assert (s.loc["B", "d_top1_lo"], s.loc["B", "d_top1_hi"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert welch(b, a, True).verdict == UNSURE
    assert "compared seed by seed" in terminal(_manifest("stacked"), s.reset_index(), {})
    # C over B is paired but open (per-seed differences -1.1, +11.1, +23.0, -0.1): the seeds a
    # verdict would take if its mean held at that spread, from scipy's t quantiles
    d = [c - b_ for c, b_ in zip([60, 75, 90, 70], b, strict=True)]
    mean, sd = sum(d) / 4, float(pd.Series(d).std())
    want = next(n for n in range(2, 100) if scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < abs(mean))
    assert s.loc["C", "top1_verdict"] == UNSURE and s.loc["C", "top1_seeds_needed"] == want
    assert "top1_seeds_needed" not in s or pd.isna(s.loc["B", "top1_seeds_needed"])  # resolved: none
    assert f"C ~{want}" in terminal(_manifest("stacked"), s.reset_index(), {})
    # seeds that differ between the rows (one reused from a table run with another seed): Welch
    units.loc[units["row"] == "A", "seed"] = ["7", "8", "9", "10"]
    s = build_summary(_manifest("stacked"), units).set_index("row")
    assert s.loc["B", "top1_test"] == WELCH and s.loc["B", "top1_verdict"] == UNSURE
    assert s.loc["C", "top1_test"] == PAIRED  # C and B still share theirs
    out = terminal(_manifest("stacked"), s.reset_index(), {})
    assert "B (no shared seeds): mean difference over seeds with a 95% Welch interval" in out, out


def test_rows_that_share_training_and_rows_near_chance_are_judged_as_such():
    m = _manifest("stacked")
    m["rows"][2]["trained_by"] = "A"  # B evaluates A's weights: paired by seed
    m["rows"][4]["same_as"] = "B"  # D is B under this profile
    units = _units({"R": [90, 91, 92], "A": [60, 62, 64], "B": [61, 63, 65.5], "C": [60, 75, 90], "D": [61, 63, 65.5]})
    s = build_summary(m, units).set_index("row")
    assert s.loc["B", "top1_verdict"] == HELPS and s.loc["B", "d_top1_lo"] > 0  # +1.17, paired
    assert s.loc["D", "top1_verdict"] == "same config as B" and s.loc["D", "d_top1"] == 0
    summary = s.reset_index()
    assert "paired by seed" in terminal(m, summary, agreement(summary))
    # the row judged against learned nothing: no gain over it, and nothing relative to it
    chance = _units({"R": [90, 91, 92], "A": [10.5, 30, 31], "B": [70, 71, 72], "C": [60, 75, 90], "D": [71, 72]})
    s = build_summary(_manifest("stacked"), chance).set_index("row")
    assert s.loc["B", "top1_verdict"] == "void (A near chance)" and pd.isna(s.loc["B", "d_top1"])
    assert s.loc["C", "top1_verdict"] == UNSURE  # C is judged against B, which learned
    out = terminal(_manifest("stacked"), s.reset_index(), {})
    assert "void (A near chance)" in out and "measures nothing" in out


def test_an_unsteady_timing_shows_no_ratio_and_no_speed():
    m = _manifest("stacked")
    units = _units({"R": [90, 91, 92], "A": [60, 61, 62], "B": [70, 71, 72], "C": [60, 75, 90], "D": [71, 71.5]})
    units["throughput_ratio_r50"] = 0.8
    units["throughput_ratio_reliable"] = 1.0
    units.loc[units["row"] == "B", "throughput_ratio_reliable"] = 0.0
    s = build_summary(m, units).set_index("row")
    assert s.loc["A", "throughput_ratio_r50"] == pytest.approx(0.8) and pd.isna(s.loc["B", "throughput_ratio_r50"])
    assert pd.isna(s.loc["B", "throughput_cost"]) and pd.isna(s.loc["D", "throughput_cost"])  # D is vs B
    assert "throughput unreliable" in s.loc["B", "flags"]


def test_a_gain_column_that_is_all_void_still_says_why():
    """When every comparison of a table is void (its baseline at chance), the gain column stays and
    says so instead of vanishing from the report."""
    import pandas as pd

    from assembled.ablation.report import gain_cells

    summary = pd.DataFrame(
        [
            {"row": "T0", "vs": None, "d_top1": None, "top1_verdict": None},
            {"row": "T1", "vs": "T0", "d_top1": None, "top1_verdict": "void (T0 near chance)"},
        ]
    )
    assert gain_cells(summary)[0]["Δ top-1 (95% CI)"] == "void (T0 near chance)"
