"""One tracked run against a real SQLite MLflow store; resume; real CIFAR-10 through ImageFolder."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from assembled.training import TrainConfig, Trainer

from .conftest import ROOT, cli

QUICK = ROOT / "ablations" / "train" / "resnet50d_sk_quick.yaml"


def test_tracked_training_logs_everything(tmp_path, mlflow_uri):
    r = cli("train", str(QUICK), "--set", "optim.epochs=3", "--experiment", "it", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    finished = r.stdout.strip().splitlines()
    assert finished[-3].startswith("finished: top-1 ") and "{" not in finished[-3]  # a line, not a dict
    assert finished[-1].startswith("MLflow run ") and str(tmp_path / "mlflow.db") in finished[-1]
    c = MlflowClient(mlflow_uri)
    exp = c.get_experiment_by_name("it")
    (run,) = c.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    # small ResNet-D + SK + DropBlock with LS + mixup: well above the 10% of chance
    assert run.data.metrics["top1"] > 40.0, run.data.metrics
    assert run.data.params["model.name"] == "resnet50d_sk"
    assert run.data.params["model.sk"] == "doubled_3x3" and run.data.params["model.deep_stem"] == "True"  # every switch
    assert run.data.params["reg.mixup_alpha"] == "0.2"
    for tag in ("git_commit", "config_hash", "version.torch"):
        assert run.data.tags[tag]
    history = c.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert len(c.get_metric_history(run.info.run_id, "lr")) == 3
    arts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"config.json", "checkpoint", "history.json"} <= arts
    assert [a.path for a in c.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/last.pt"]
    cfg = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="config.json", tracking_uri=mlflow_uri
            )
        ).read_text()
    )
    assert cfg["model"]["dropblock"] is True


def test_bad_override_is_a_clear_error(tmp_path):
    r = cli("train", str(QUICK), "--set", "optim.epoch=3", cwd=tmp_path)
    assert r.returncode == 2
    assert "resnet50d_sk_quick.yaml: key 'optim.epoch'" in r.stderr
    assert not (tmp_path / "mlflow.db").exists()


def _tiny(**over) -> TrainConfig:
    base = {
        "model": {"name": "resnet50d", "width": 8, "layers": [1, 1, 1, 1]},
        "data": {"train_size": 256, "val_size": 64, "source_size": 32, "image_size": 32},
        "optim": {"epochs": 2, "batch_size": 32, "warmup_epochs": 0},
    }
    base.update(over)
    return TrainConfig.model_validate(base)


def test_resume_continues_after_last_epoch(tmp_path):
    cfg = _tiny()
    Trainer(cfg, tmp_path, progress=False).fit()
    longer = _tiny(optim={"epochs": 3, "batch_size": 32, "warmup_epochs": 0})
    # another config: starts afresh
    r = Trainer(longer, tmp_path, progress=False).fit()
    assert r.resumed_from == 0 and len(r.history) == 3
    again = Trainer(longer, tmp_path, progress=False).fit()
    assert again.resumed_from == 3 and len(again.history) == 3  # nothing left to do


def test_seeded_runs_are_reproducible(tmp_path):
    a = Trainer(_tiny(), tmp_path / "a", progress=False).fit()
    b = Trainer(_tiny(), tmp_path / "b", progress=False).fit()
    assert a.history[-1]["loss"] == pytest.approx(b.history[-1]["loss"], rel=1e-5)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_kd_needs_matching_teacher_logits(tmp_path):
    bad = tmp_path / "t.pt"
    torch.save(torch.zeros(10, 10), bad)
    cfg = _tiny(reg={"kd_temperature": 1.0, "teacher_logits": str(bad)})
    with pytest.raises(ValueError, match=r"t.pt: teacher logits have shape \(10, 10\), expected \(256, 10\)"):
        Trainer(cfg, tmp_path / "w", progress=False).fit()


def test_kd_mixup_type2_autoaugment_train(tmp_path):
    t = tmp_path / "t.pt"
    torch.save(torch.randn(256, 10), t)
    cfg = _tiny(
        reg={
            "kd_temperature": 2.0,
            "teacher_logits": str(t),
            "mixup_alpha": 0.2,
            "mixup_type": 2,
            "label_smoothing": 0.1,
        },
        data={"train_size": 256, "val_size": 64, "source_size": 32, "image_size": 32, "autoaugment": True},
    )
    r = Trainer(cfg, tmp_path / "w", progress=False).fit()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in r.history)


@pytest.mark.slow
def test_real_cifar10_through_imagefolder(cifar10_folder, tmp_path):
    cfg = TrainConfig.model_validate(
        {
            "model": {"name": "resnet50d", "width": 16, "layers": [1, 1, 1, 1], "small_input": True},
            "data": {
                "kind": "folder",
                "path": str(cifar10_folder),
                "image_size": 32,
                "limit_per_class": 300,
                "val_limit_per_class": 100,
                "min_crop_scale": 0.35,
            },
            "optim": {"epochs": 3, "batch_size": 64, "base_lr": 0.4, "warmup_epochs": 0.3},
        }
    )
    r = Trainer(cfg, tmp_path, progress=False).fit()
    assert r.history[-1]["top1"] > 25.0, r.history  # chance is 10%
