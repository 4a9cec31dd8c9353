"""The default profile (`cpu`) means something: Table 7's baseline E0 and its first step E1 learn
(final-epoch training loss below ln(classes), top-1 above twice chance), and its reference rows
that cannot learn at that budget are shown from the paper instead of trained."""

from __future__ import annotations

import math

from assembled.ablation.plan import build_plan
from assembled.ablation.stats import paired, resolved
from assembled.training import Trainer


def test_default_plan_trains_no_paper_only_rows_and_repeats():
    plan = build_plan("7", "cpu")
    assert plan.paper_only == [f"EffB{i}" for i in range(8)]
    assert not any(u.id.startswith("EffB") for k, u in plan.rows.items() if k in plan.wanted)
    assert plan.repeats >= 2 and len(plan.units_of("E0")) == plan.repeats


def test_default_baseline_and_first_step_learn_and_the_seeds_resolve_the_step(tmp_path):
    """Every seed of E0 and E1 learns, and the profile's seeds resolve the step between them
    (top-1 paired by seed, as the report compares): with 2 seeds it was -17.30 [-46.52, +11.92]."""
    plan = build_plan("7", "cpu", rows=["E0", "E1"])
    top1: dict[str, dict[int, float]] = {"E0": {}, "E1": {}}
    for row in top1:
        for unit in plan.units_of(row):
            cfg = unit.cfg.model_copy(update={"threads": 1})
            m = Trainer(cfg, tmp_path / unit.key, progress=False).fit().metrics
            classes = cfg.data.num_classes
            assert m["loss"] < math.log(classes), (unit.key, m)
            assert m["top1"] > 2 * 100 / classes, (unit.key, m)
            top1[row][unit.repeat] = m["top1"]
    gain = paired(top1["E1"], top1["E0"], True, step=100 / plan.rows["E0"].cfg.data.val_size)
    assert resolved(gain.verdict), (top1, gain)
