"""What each layer imports: the CLI's parser, configs, plans and dashboards answer without the
model stack (torch took 2-5 s to import on a loaded 2-core box, Ray and MLflow 1-2 s each);
MLflow itself loads only where a client is made.
Each case runs in a fresh interpreter, since this one has imported everything already."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

CASES = {
    # what is imported -> the heavy packages it must not pull in
    "import assembled.cli as c; c.build_parser()": ("torch", "ray", "optuna", "mlflow"),
    "import assembled.ablation.plan, assembled.ablation.preview": ("torch", "ray", "optuna", "mlflow"),
    "import assembled.search.options": ("torch", "ray", "optuna", "mlflow"),
    "import assembled.training.config, assembled.evaluation.config, assembled.models": ("torch", "ray"),
    "import dashboards.build, dashboards.cli, dashboards.page, dashboards.source": ("torch", "ray", "optuna", "mlflow"),
    "import assembled.ablation.report, assembled.ablation.results": ("torch", "ray", "optuna", "mlflow"),
    "import assembled.tracking.store, assembled.tracking.drivers": ("torch", "ray", "optuna", "mlflow"),
}


@pytest.mark.parametrize("code", list(CASES))
def test_light_layers_do_not_import_the_model_stack(code):
    banned = CASES[code]
    probe = f"import sys\n{code}\nprint(sorted(m for m in {banned!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]", (code, r.stdout)


def test_a_plan_validates_without_torch():
    """Building the default plan (what `assembled plan 7` and the CLI's input checks do) loads
    no torch: a bad row, profile or file is one line in about a second."""
    probe = (
        "import sys\n"
        "from assembled.ablation.plan import build_plan\n"
        "plan = build_plan('7', 'cpu')\n"
        "assert len(plan.rows) > 10 and all(u.cfg.config_hash() for u in plan.rows.values())\n"
        "print(sorted(m for m in ('torch', 'ray', 'optuna') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]", r.stdout


def test_planning_a_folder_profile_neither_decodes_nor_imports_torch(tmp_path, monkeypatch):
    """`assembled plan 6 --profile cifar-cpu` (a folder source on the device pipeline) finds the
    splits without decoding them or importing torch (it did both: 6.1 s beside a store, 1.6 s of
    it torch, and a first plan would have decoded 60,000 images); `ablation` still decodes them
    before any trial starts."""
    from PIL import Image

    from assembled.ablation.plan import build_plan
    from assembled.data.sources import CACHE_ENV

    data, cache = tmp_path / "data", tmp_path / "cache"
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (data / split / cls).mkdir(parents=True)
            for i in range(40):
                Image.new("RGB", (32, 32), (i * 6, 0, 0)).save(data / split / cls / f"{i}.png")
    monkeypatch.setenv(CACHE_ENV, str(cache))
    probe = (
        "import sys\n"
        "from assembled.ablation.plan import build_plan\n"
        f"plan = build_plan('6', 'cifar-cpu', data={str(data)!r}, decode=False)\n"
        "print(sorted(m for m in ('torch', 'ray', 'optuna') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]", r.stdout
    assert not cache.exists() or not any(cache.iterdir()), "the plan decoded the data"
    build_plan("6", "cifar-cpu", data=str(data))  # what `ablation` builds: decoded here, once
    assert any(p.suffix == ".npy" for p in cache.iterdir())
