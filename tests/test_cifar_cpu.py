"""The real-data CPU profile (``cifar-cpu``): networks scaled so that every step of Tables 6 and
7 keeps the paper's cost structure, rows that need no training of their own, and, on the shipped
CIFAR-10 (where ../shared is present), a baseline that learns and a large effect resolved."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from assembled.ablation.plan import build_plan
from assembled.ablation.profiles import load_profiles, train_config
from assembled.ablation.spec import load_table
from assembled.data.sources import CACHE_ENV
from assembled.evaluation.complexity import count_macs, count_params
from assembled.models import build_model, resolve_config

from .conftest import ROOT

TOLERANCE = 0.06  # each step's MACs and params ratio within 6% of the full-size one (worst: T4's 1.38 vs 1.31)


@functools.cache
def _cost(model: str, classes: int, size: int) -> tuple[int, int]:
    """(MACs, params) of a model config (JSON) at a crop, counted on the meta device (shapes only)."""
    with torch.device("meta"):
        net = build_model(resolve_config(json.loads(model)).inference_twin(), classes)
    return count_macs(net, size), count_params(net)


def _costs(table: str, profile: str) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """Per non-reference row: (MACs, params) under the profile and at full size (paper's crop)."""
    tbl, rows = load_table(ROOT / "ablations" / f"{table}.yaml")
    prof = load_profiles(ROOT / "ablations" / "profiles.yaml")[profile]
    out = {}
    for r in rows:
        if r.reference:
            continue
        cfg = train_config(r, tbl, prof)
        small = cfg.model.model_dump_json()
        full = resolve_config(r.model).model_dump_json()
        out[r.id] = (_cost(small, 10, cfg.data.eval_crop), _cost(full, 1000, r.input_size))
    return out


@pytest.mark.parametrize("table", ["table06", "table07"])
def test_each_step_keeps_the_full_size_cost_ratios(table):
    costs = _costs(table, "cifar-cpu")
    ids = list(costs)
    for prev, row in zip(ids, ids[1:], strict=False):
        for k, what in enumerate(("MACs", "params")):
            small = costs[row][0][k] / costs[prev][0][k]
            full = costs[row][1][k] / costs[prev][1][k]
            assert abs(small / full - 1) <= TOLERANCE, f"{prev} -> {row} {what}: {small:.3f} vs full size {full:.3f}"


def test_the_old_cpu_scale_breaks_big_little():
    """Why the profile keeps full depth and CIFAR stems: one block a stage made BigLittle cost more
    than the network it lightens (the issue's 2.85 -> 4.22 M MACs), where the paper's costs 0.67x."""
    costs = _costs("table06", "cpu")
    assert costs["T3"][0][0] / costs["T2"][0][0] > 1.0 > costs["T3"][1][0] / costs["T2"][1][0]


def _tiny_cifar(root, per_class=13):
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", 3)):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
    return root


def test_rows_that_need_no_training_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    data = str(_tiny_cifar(tmp_path / "c"))
    plan = build_plan("6", "cifar-cpu", data=data)
    # T4 is T3's training evaluated at the paper's 256 (36 px): seed by seed, nothing trained twice
    assert [u.trained_by for u in plan.units_of("T4")] == ["T3"] + [f"T3@{i}" for i in range(1, plan.repeats)]
    assert plan.rows["T4"].cfg.data.eval_size == 36 and plan.rows["T3"].cfg.data.eval_size == 32
    assert plan.rows["T4"].needs == ["T3"] and plan.units["T4"] == ("T4", plan.rows["T4"].cfg.config_hash())
    # under cifar the 32-px cap makes T4 T3 itself: the same runs, reported as identical
    same = build_plan("6", "cifar", data=data)
    assert same.rows["T4"].same_as == "T3" and same.units["T4"] == same.units["T3"]
    from assembled.ablation.plan import decide

    decisions = decide(same, {}, rerun=False)
    assert decisions["T4"].action == "same" and decisions["T3"].action == "run"
    assert all(u.same_as is None and u.trained_by is None for u in plan.rows.values() if u.id != "T4")


@pytest.mark.slow
def test_real_cifar_baseline_learns_and_a_large_effect_is_resolved(cifar10_folder, tmp_path, monkeypatch):
    """On the shipped CIFAR-10 under cifar-cpu's recipe (on fewer images, to fit the suite): the
    R50 baseline learns, and a known large effect, ten times less training (measured here
    with lr 0.4 and half an epoch of warm-up: 30.1 vs 16.5% top-1 over 3 seeds each, 29.3-30.9
    against 13.5-19.9; 32.3 vs 17.4 with the earlier lr 0.8), is resolved with the profile's first
    three seeds (of its default five: more seeds only narrow the interval; three keep the suite's
    time)."""
    from assembled.ablation.stats import HELPS, welch
    from assembled.training import Trainer

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    plan = build_plan("6", "cifar-cpu", data=str(cifar10_folder), rows=["T0"])
    assert len(plan.units_of("T0")) == plan.repeats == 5
    seeds = plan.units_of("T0")[:3]
    tops: dict[int, list[float]] = {}
    for unit in seeds:
        for images in (3200, 320):
            data = unit.cfg.data.model_copy(update={"epoch_size": images, "val_limit_per_class": 300})
            optim = unit.cfg.optim.model_copy(update={"epochs": 2})  # the budget the figures above were measured at
            cfg = unit.cfg.model_copy(update={"data": data, "optim": optim, "threads": 1, "eval_every": 10})
            m = Trainer(cfg, tmp_path / f"{unit.repeat}-{images}", progress=False).fit().metrics
            if images == 3200:  # learns: below chance's loss, over 2x chance
                assert m["loss"] < np.log(10) and m["top1"] > 20, m
            tops.setdefault(images, []).append(m["top1"])
    assert welch(tops[3200], tops[320], higher_is_better=True).verdict == HELPS, tops
