"""The default profile (`cpu`) means something: Table 7's baseline E0 and its first step E1 learn
(final-epoch training loss below ln(classes), top-1 above twice chance), and its reference rows
that cannot learn at that budget are shown from the paper instead of trained."""

from __future__ import annotations

import math

import pytest

from assembled.ablation.plan import build_plan
from assembled.training import Trainer


def test_default_plan_trains_no_paper_only_rows_and_repeats():
    plan = build_plan("7", "cpu")
    assert plan.paper_only == [f"EffB{i}" for i in range(8)]
    assert not any(u.id.startswith("EffB") for k, u in plan.rows.items() if k in plan.wanted)
    assert plan.repeats >= 2 and len(plan.units_of("E0")) == plan.repeats


@pytest.mark.parametrize("row", ["E0", "E1"])
def test_default_baseline_and_first_step_learn(row, tmp_path):
    plan = build_plan("7", "cpu", rows=[row])
    cfg = plan.rows[row].cfg.model_copy(update={"threads": 1})
    classes = cfg.data.num_classes
    m = Trainer(cfg, tmp_path, progress=False).fit().metrics
    assert m["loss"] < math.log(classes), m
    assert m["top1"] > 2 * 100 / classes, m
