"""What a new user and a hostile tester hit first, without Ray: every table plans with every
profile, bad input fails before anything runs, checkpoints cannot run code, unreadable images
never change a label, a fresh SQLite store survives two commands at once, a resumed run ends
exactly where an uninterrupted one does."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from assembled.ablation.plan import build_plan
from assembled.ablation.profiles import load_profiles
from assembled.ablation.spec import load_table
from assembled.config_io import ConfigError
from assembled.data.folder import ImageFolderDataset
from assembled.models import build_model, resolve_config
from assembled.runner.resources import Resources, fit_resources
from assembled.training import TrainConfig, Trainer, TrainingDiverged
from assembled.training import checkpoint as ckpt

from .conftest import ROOT, cli

PROFILES = list(load_profiles(ROOT / "ablations" / "profiles.yaml"))
TABLES = sorted(int(p.stem[5:]) for p in (ROOT / "ablations").glob("table*.yaml"))


def _images(folder: Path, n: int, size: int = 8, color: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size), (color, i % 256, 0)).save(folder / f"{i:04d}.png")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """An ImageFolder large enough for the imagenet profile's batch of 1024."""
    root = tmp_path_factory.mktemp("folder")
    for split, n in (("train", 520), ("val", 4)):
        for c in range(2):
            _images(root / split / f"c{c}", n, color=200 * c)
    return root


# -- every table x every profile ---------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("table", TABLES)
def test_every_table_plans_with_every_profile(table, profile, image_folder):
    synthetic = (
        load_profiles(ROOT / "ablations" / "profiles.yaml")[profile].data.get("kind", "synthetic") == "synthetic"
    )
    data = None if synthetic else str(image_folder)
    if table >= 10 and profile == "imagenet":  # its transfer datasets are named under /data
        with pytest.raises(ConfigError, match=r"profile imagenet: key 'datasets\.\w+': .*/data/"):
            build_plan(str(table), profile, data)
        return
    plan = build_plan(str(table), profile, data)
    assert plan.wanted and set(plan.table_rows) - set(plan.paper_only) <= set(plan.wanted)
    assert not set(plan.paper_only) & set(plan.wanted)
    for r in plan.rows.values():
        if r.teacher:
            assert r.teacher in plan.rows and r.cfg.reg.teacher == plan.rows[r.teacher].cfg.config_hash()


def test_small_profiles_shrink_every_model():
    """smoke and cpu never train a full-size network (the smoke EfficientNet-B7 took 10 min)."""
    for profile in ("smoke", "cpu"):
        plan = build_plan("7", profile)
        for rid, r in plan.rows.items():
            params = sum(p.numel() for p in build_model(r.cfg.model, 10).parameters())
            assert params < 3e6, (profile, rid, params)
        assert plan.rows["E7"].teacher == "E6"  # the 1-epoch B7 cannot teach: E6 does


def test_teacher_chain_is_pulled_in_whole(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(
        "table: chain\ntitle: c\nrows:\n"
        "  - {id: G, model: resnet50, epochs: 120, input_size: 224}\n"
        "  - {id: T, model: resnet50, kd: {row: G}, epochs: 120, input_size: 224}\n"
        "  - {id: S, model: resnet50d, kd: {row: T}, epochs: 120, input_size: 224}\n"
        "  - {id: X, model: resnet50d, epochs: 120, input_size: 224}\n"
    )
    assert sorted(build_plan(str(path), "smoke", rows=["S"]).wanted) == ["G", "S", "T"]


# -- resources -----------------------------------------------------------------------------------
def test_resources_fit_a_local_ray_and_refuse_an_impossible_cluster():
    req = Resources(cpu=4, gpu=1)
    assert fit_resources("cifar", req, [{"CPU": 8, "GPU": 2}], False) == ({"CPU": 4.0, "GPU": 1.0}, None)
    fitted, note = fit_resources("cifar-cpu", Resources(cpu=4), [{"CPU": 2}], True)
    # a CPU-only machine runs one-thread trials side by side (benchmarks/threads.py)
    assert fitted == {"CPU": 1.0} and "profile cifar-cpu asks for 4 CPU" in note and "each trial gets 1 CPU" in note
    assert "2 one-thread trials at once" in note
    # a GPU profile's runs are CUDA runs: where there is no GPU it refuses, it never trains them on a CPU
    for started_here, where in ((True, "this machine has none"), (False, "the cluster has none")):
        with pytest.raises(ConfigError) as e:
            fit_resources("cifar", req, [{"CPU": 64}], started_here)
        assert "\n" not in str(e.value) and "profile cifar trains on GPUs" in str(e.value) and where in str(e.value)
    with pytest.raises(ConfigError) as e:
        fit_resources("cifar", req, [{"CPU": 2, "GPU": 1}, {"CPU": 1}], False)
    msg = str(e.value)
    assert "\n" not in msg and "profile cifar" in msg and "4 CPU" in msg and "largest node" in msg and "2 CPU" in msg


def test_fractional_gpus_and_data_parallel_workers_fit():
    """Several small-image trials share a GPU (gpu: 0.25); a data-parallel trial's workers may
    spread over nodes, or share a machine this command started."""
    assert fit_resources("cifar", Resources(cpu=2, gpu=0.25), [{"CPU": 16, "GPU": 1}], False) == (
        {"CPU": 2.0, "GPU": 0.25},
        None,
    )
    ddp = Resources(cpu=4, gpu=1, workers=4)
    assert fit_resources("imagenet", ddp, [{"CPU": 8, "GPU": 2}, {"CPU": 8, "GPU": 2}], False)[0] == {
        "CPU": 4.0,
        "GPU": 1.0,
    }
    with pytest.raises(ConfigError, match="4 workers of 4 CPU, 1 GPU, but the cluster has 8 CPU, 2 GPU"):
        fit_resources("imagenet", ddp, [{"CPU": 8, "GPU": 2}], False)
    fitted, note = fit_resources("smoke", Resources(cpu=1, workers=4), [{"CPU": 2}], True)
    assert fitted == {"CPU": 0.5} and "each worker gets 0.5 CPU" in note


# -- bad input fails before anything runs ----------------------------------------------------------
@pytest.mark.parametrize(
    "layout,expected",
    [("missing", "data path does not exist"), ("empty", "no train folder"), ("noval", "no val / validation / test")],
)
def test_bad_data_fails_before_ray_or_mlflow(tmp_path, layout, expected):
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "noval":
        _images(root / "train" / "a", 40)
    r = cli("ablation", "6", "--profile", "smoke", "--data", str(root), cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --data: ") and expected in err[0] and str(root) in err[0]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()


def test_train_split_smaller_than_a_batch_is_a_config_error(tmp_path):
    root = tmp_path / "d"
    _images(root / "train" / "a", 5)
    _images(root / "val" / "a", 2)
    with pytest.raises(ConfigError, match=r"--data: .*train split has 5 images, fewer than one batch of 32"):
        build_plan("6", "smoke", str(root))
    with pytest.raises(ValueError, match="smaller than one batch"):
        TrainConfig.model_validate({"data": {"train_size": 16}, "optim": {"batch_size": 32}})


def test_odd_batch_with_mixup_type2_is_a_config_error():
    with pytest.raises(ValueError, match="mixup_type 2 .* must be even, got 33"):
        TrainConfig.model_validate({"optim": {"batch_size": 33}, "reg": {"mixup_alpha": 0.2, "mixup_type": 2}})


@pytest.mark.parametrize(
    "model,reg,key,expected",
    [
        ("{name: resnet50d, aa_filter: 3, aa_proj: true}", "{}", "model", "avg_down and aa_proj conflict"),
        ("{name: resnet50d_sk_bl, deep_stem: true}", "{}", "model", "big_little conflicts with deep_stem"),
        (
            "{name: resnet50d_sk_bl, aa_filter: 3, aa_maxpool: true}",
            "{}",
            "model",
            "big_little conflicts with aa_maxpool",
        ),
        ("resnet50d", "{dropblock_keep_prob: 0.9}", "reg", "has no DropBlock"),
    ],
)
def test_conflicting_switches_name_row_and_key(tmp_path, model, reg, key, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(f"table: b\ntitle: b\nrows:\n  - {{id: R, model: {model}, reg: {reg}}}\n")
    with pytest.raises(ConfigError) as e:
        load_table(path)
    assert f"{path}: row R: key '{key}" in str(e.value) and expected in str(e.value), str(e.value)


def test_unknown_table_and_profile_are_one_line_errors(tmp_path):
    r = cli("ablation", "42", cwd=tmp_path)
    assert r.returncode == 2 and "no table 42" in r.stderr and "the tables are 2, 3, 4, 5, 6, 7, 8, 9" in r.stderr
    r = cli("ablation", "6", "--profile", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "no profile 'nope'" in r.stderr
    assert not (tmp_path / "mlflow.db").exists()


# -- checkpoints cannot run code ---------------------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_does_not_execute(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"model": _Payload(marker), "config": {}}, f)
    with pytest.raises(ValueError, match="evil.pt: refused to load"):
        ckpt.load(evil)
    r = cli("evaluate", str(evil), cwd=tmp_path)
    assert r.returncode == 2 and "evil.pt: refused to load" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()
    # torch.save writes a zip: the same payload inside it is refused as well
    torch.save({"model": _Payload(marker)}, tmp_path / "evil2.pt")
    with pytest.raises(ValueError, match="refused to load"):
        ckpt.load(tmp_path / "evil2.pt")
    assert not marker.exists()


# -- unreadable images ------------------------------------------------------------------------------
def test_unreadable_image_never_changes_a_label(tmp_path):
    _images(tmp_path / "a", 3, color=0)
    _images(tmp_path / "b", 3, color=200)
    (tmp_path / "a" / "0002.png").write_bytes(b"not an image")  # the last of class a
    ds = ImageFolderDataset(tmp_path)
    log = tmp_path / "skips.txt"
    ds.skip_log = log
    img, label, index = ds[2]
    assert (label, index) == (1, 3) and img.getpixel((0, 0))[0] == 200  # b's first image, with b's label
    assert log.read_text().strip() == str(tmp_path / "a" / "0002.png")


def test_skipped_files_reach_the_run(tmp_path, mlflow_uri):
    root = tmp_path / "d"
    for c in range(2):
        _images(root / "train" / f"c{c}", 40, size=16, color=100 * c)
        _images(root / "val" / f"c{c}", 8, size=16, color=100 * c)
    (root / "train" / "c0" / "0005.png").write_bytes(b"\x00broken")
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "model: {name: resnet50, width: 8, layers: [1, 1, 1, 1]}\n"
        f"data: {{kind: folder, path: {root}, image_size: 16, num_workers: 2}}\n"
        "optim: {epochs: 1, batch_size: 16, warmup_epochs: 0}\n"
    )
    r = cli("train", str(cfg), "--experiment", "skips", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 unreadable image(s) skipped" in r.stderr
    c = MlflowClient(mlflow_uri)
    (run,) = c.search_runs([c.get_experiment_by_name("skips").experiment_id])
    assert run.data.tags["skipped_images"] == "1" and run.data.metrics["skipped_images"] == 1
    text = Path(c.download_artifacts(run.info.run_id, "skipped_files.txt", str(tmp_path))).read_text()
    assert text.strip() == str(root / "train" / "c0" / "0005.png")


# -- the tracking store ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_fresh_sqlite_store_two_commands_at_once(tmp_path):
    """Several processes creating the schema of one new SQLite file at the same moment all succeed."""
    code = (
        "import sys, time, pathlib\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from assembled.tracking.store import ensure_experiment\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "print(ensure_experiment('table06', sys.argv[1]))\n"
    )
    for attempt in range(2):
        uri = f"sqlite:///{tmp_path / f'm{attempt}.db'}"
        go = tmp_path / f"go{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, uri, str(go), str(ROOT / "platform")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        time.sleep(3)  # every process imported MLflow and waits at the barrier
        go.touch()
        outs = [p.communicate() for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
        assert len({o[0].strip() for o in outs}) == 1  # one experiment, the same id for all


# -- training faults and exact resume -----------------------------------------------------------------
def _tiny(**over) -> TrainConfig:
    base = {
        "model": {"name": "resnet50d", "width": 8, "layers": [1, 1, 1, 1], "dropblock": True},
        "data": {"train_size": 256, "val_size": 64, "source_size": 32, "image_size": 32},
        "optim": {"epochs": 3, "batch_size": 32, "warmup_epochs": 0},
        "reg": {"mixup_alpha": 0.2, "label_smoothing": 0.1},
        "threads": 1,
    }
    base.update(over)
    return TrainConfig.model_validate(base)


def test_diverged_validation_fails_the_run(tmp_path):
    cfg = _tiny(optim={"epochs": 1, "batch_size": 32, "warmup_epochs": 0, "base_lr": 1e12})
    with pytest.raises(TrainingDiverged, match="loss is (nan|inf)"):
        Trainer(cfg, tmp_path, progress=False).fit()


def test_resume_is_exact(tmp_path):
    """Interrupted after epoch 1 and resumed, a run ends bitwise where the uninterrupted one does."""
    cfg = _tiny()
    whole = Trainer(cfg, tmp_path / "whole", progress=False).fit()
    cut = tmp_path / "cut"
    short = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": 3})})
    first = Trainer(short, cut, progress=False)
    # stop after the first epoch's checkpoint, as a kill would
    first.callbacks.append(_StopAfter(1))
    with pytest.raises(_Stop):
        first.fit()
    resumed = Trainer(cfg, cut, progress=False).fit()
    assert resumed.resumed_from == 1
    assert resumed.history[-1]["loss"] == whole.history[-1]["loss"]
    assert resumed.history[-1]["top1"] == whole.history[-1]["top1"]
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class _Stop(Exception):
    pass


class _StopAfter:
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, epoch, metrics, checkpoint) -> None:
        if epoch + 1 == self.epochs:
            raise _Stop


@pytest.mark.slow
def test_train_killed_after_first_checkpoint_resumes_exactly(tmp_path, mlflow_uri):
    """The bar as a user meets it: `assembled train --workdir W` killed (SIGKILL) after its first
    checkpoint and run again ends with exactly the uninterrupted run's final loss and top-1."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "model: {name: resnet50d, width: 8, layers: [1, 1, 1, 1], dropblock: true}\n"
        "data: {train_size: 512, val_size: 64, source_size: 32, image_size: 32}\n"
        "optim: {epochs: 4, batch_size: 32, warmup_epochs: 0}\n"
        "reg: {mixup_alpha: 0.2, label_smoothing: 0.1, dropblock_keep_prob: 0.9}\nthreads: 1\n"
    )
    whole = cli("train", str(cfg), "--workdir", str(tmp_path / "whole"), "--experiment", "x", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    w = tmp_path / "cut"
    exe = Path(sys.executable).parent / "assembled"
    proc = subprocess.Popen([str(exe), "train", str(cfg), "--workdir", str(w), "--experiment", "x"], cwd=tmp_path)
    while not (w / "last.pt").exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.load(w / "last.pt")["epoch"] < 3, "the run finished before it could be killed"
    again = cli("train", str(cfg), "--workdir", str(w), "--experiment", "x", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    a, b = ckpt.load(tmp_path / "whole" / "last.pt"), ckpt.load(w / "last.pt")
    assert a["history"][-1]["loss"] == b["history"][-1]["loss"]
    assert a["history"][-1]["top1"] == b["history"][-1]["top1"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# -- throughput ----------------------------------------------------------------------------------------
def test_throughput_ratio_baseline_reads_one():
    from assembled.evaluation.throughput import measure_architectures, reference_model

    small = {"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1]}
    jobs = {"E0": (small, 32, 10), "E1": ({**small, "name": "resnet50d"}, 32, 10)}
    # DropBlock (identity at inference) and training-only settings: the same network, timed once
    jobs["E1db"] = (
        {**small, "name": "resnet50d", "dropblock": True, "zero_gamma": False, "bn_momentum": 0.003},
        32,
        10,
    )
    out = measure_architectures(jobs, small, 32, batch_size=8, repeats=3, device="cpu", threads=1)
    assert out["E1db"] == out["E1"]
    assert out["E0"]["throughput_ratio_r50"] == 1.0
    for m in out.values():
        assert m["throughput_min"] <= m["throughput"] <= m["throughput_max"]
    ref = {"name": "resnet50", "width": 8, "layers": (1, 1, 1, 1), "small_input": False}
    assert reference_model(resolve_config(small)) == ref


def test_tables_and_plan_run_nothing(tmp_path):
    r = cli("tables", cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == len(TABLES) and "table07.yaml" in r.stdout
    r = cli("plan", "7", "--profile", "smoke", "--rows", "E8", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    blocks: dict[str, str] = {}  # row -> its header and detail lines (details are indented 12)
    for line in out.splitlines()[3:-1]:
        if len(line) - len(line.lstrip()) < 12:
            row = line.split()[0]
        blocks[row] = blocks.get(row, "") + line + "\n"
    assert "seed 0: run" in blocks["E8"] and "seed 0: run" in blocks["E6"]  # E8 and its teacher chain (smoke: E6)
    assert "seed 0: not requested" in blocks["E9"]
    assert "vs E7: optim.epochs=6" in blocks["E8"]  # the diff against its base row
    assert "on a local Ray: each trial gets 1 CPU of the" in out  # what each trial would get here
    assert "Nothing was run or recorded." in out
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()


def test_summary_table_reads_cleanly():
    """'-' for missing values (never None), empty paper columns dropped, toy GMACs readable, and
    mFR vs the baseline averaged over the perturbations the baseline can normalise."""
    import pandas as pd

    from assembled.ablation.report import results_cells, text
    from assembled.ablation.summary import _relative
    from assembled.data.perturbations import PERTURBATIONS

    rows = [
        {"row": "A", "status": "FINISHED", "n": 1, "seeds": 1, "paper_top1": 76.1, "top1": 30.0, "paper_mce": None,
         "gmacs": 0.00412},
        {"row": "B", "status": "NOT RUN", "n": 0, "seeds": 1, "paper_top1": 77.0, "top1": None, "paper_mce": None,
         "gmacs": None},
    ]  # fmt: skip
    out = text(results_cells(pd.DataFrame(rows), "A"))
    assert "None" not in out and "paper mCE" not in out and "0.00412" in out and " - " in out + " "

    base = {f"fp_{p}": (0.0 if p == "snow" else 2.0) for p in PERTURBATIONS}
    value, n = _relative(dict.fromkeys((f"fp_{p}" for p in PERTURBATIONS), 1.0), base, "fp_", PERTURBATIONS)
    assert (value, n) == (50.0, 9)
