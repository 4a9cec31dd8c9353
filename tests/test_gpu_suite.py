"""The GPU suite (benchmarks/gpu_suite.sh) in its reduced CPU mode, as a developer lent a GPU
would call it: every step runs to the end on toy sizes and the one table names them all, so the
suite cannot rot between the rare sessions that have a GPU."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import ROOT

STEPS = [
    "env",
    "train-r50",
    "train-asm",
    "inference",
    "cifar",
    "syncs",
    "syncs-kd",
    "data-path",
    "robustness",
    "decode",
    "compiled",
]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


@pytest.mark.slow
def test_the_gpu_suite_runs_every_step_in_cpu_mode(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path)}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--cpu", "--budget", "3600"],
                       cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    outcomes = {o["step"]: o for o in json.loads((tmp_path / "summary.json").read_text())}
    assert list(outcomes) == STEPS
    for name, o in outcomes.items():
        if not CIFAR.exists() and o["status"].startswith("skipped: no CIFAR-10"):
            continue  # a checkout without ../shared: said, not hidden
        assert o["status"] == "ok", (name, o)
        assert (tmp_path / f"{name}.txt").exists()
    table = (tmp_path / "summary.txt").read_text()
    assert all(f"\n{name} " in table for name in STEPS), table
    assert "bf16 matmul" in table and "x R50" in table and "mCE total" in table and "decode PIL" in table
    if CIFAR.exists():  # the training and data steps read real CIFAR-10
        assert "ratio trainer/bare" in table and "syncs: skipped (no CUDA device" in table
        assert "cifar top1" in table and "device + AutoAugment" in table
