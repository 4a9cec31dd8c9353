"""Data-parallel trials: the trainer under a real gloo process group (two processes on this
machine) against one process with the same global batch and seed, and a 2-worker trial run by
Ray Train inside a Tune trial, tracked as one MLflow run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import SequentialSampler

from assembled.ablation.runner import run_ablation
from assembled.data.loaders import ShardSampler
from assembled.training import TrainConfig, Trainer

from .browser import free_port
from .conftest import ROOT, children

CFG = {
    "model": {"name": "resnet50d", "width": 8, "layers": [1, 1, 1, 1]},
    "data": {"kind": "synthetic", "num_classes": 4, "train_size": 1536, "val_size": 256, "image_size": 32,
             "source_size": 32, "eval_size": 32},
    "optim": {"epochs": 4, "batch_size": 32, "base_lr": 0.4, "warmup_epochs": 0.3},
    "reg": {"label_smoothing": 0.1},
    "threads": 1,
}  # fmt: skip


def test_shards_are_disjoint_and_cover_the_global_order():
    base = SequentialSampler(range(10))
    shards = [list(ShardSampler(base, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]] and [len(ShardSampler(base, r, 3)) for r in range(3)] == [
        4,
        3,
        3,
    ]


def _rank(rank: int, size: int, port: int, out: str, cfg: dict = CFG) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    result = Trainer(TrainConfig.model_validate(cfg), Path(out) / "w", progress=False).fit()
    state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
    torch.save(
        {"top1": result.metrics["top1"], "state": state, "ckpt": result.checkpoint is not None},
        Path(out) / f"{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_train_one_model_as_well_as_one_process():
    out = tempfile.mkdtemp()
    mp.spawn(_rank, args=(2, free_port(), out), nprocs=2)
    r0, r1 = (torch.load(Path(out) / f"{r}.pt") for r in (0, 1))
    for k, v in r0["state"].items():  # parameters and BatchNorm statistics alike
        assert torch.equal(v, r1["state"][k]), k
    assert r0["top1"] == r1["top1"]
    assert (Path(out) / "w" / "last.pt").exists()  # rank 0 wrote the one checkpoint
    single = [
        Trainer(TrainConfig.model_validate({**CFG, "seed": s}), tempfile.mkdtemp(), progress=False)
        .fit()
        .metrics["top1"]
        for s in (0, 1, 2)
    ]
    # run-to-run noise of this toy is several points (measured 80-88 over three seeds)
    assert min(single) - 8 <= r0["top1"] <= max(single) + 8, (r0["top1"], single)


def test_sync_bn_is_an_option_for_gpu_workers(tmp_path):
    from assembled.runner.resources import Resources

    with pytest.raises(ValueError, match="sync_bn needs GPU workers"):
        Resources(workers=2, sync_bn=True)
    assert Resources(workers=2, sync_bn=True, gpu=1).sync_bn
    cfg = TrainConfig.model_validate({**CFG, "sync_bn": True})
    assert cfg.config_hash() != TrainConfig.model_validate(CFG).config_hash()  # it changes what is trained
    assert (
        TrainConfig.model_validate({**CFG, "sync_bn": False}).config_hash()
        == TrainConfig.model_validate(CFG).config_hash()
    )


def test_batch_must_split_over_the_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr("assembled.training.trainer.world", lambda: (0, 3))
    with pytest.raises(ValueError, match="does not split evenly over 3 data-parallel workers"):
        Trainer(TrainConfig.model_validate(CFG), tmp_path, progress=False).fit()


DDP_TABLE = """
table: ddp
title: one data-parallel row
rows:
  - {id: A, model: {name: resnet50d, width: 8, layers: [1, 1, 1, 1]}, reg: {mixup_alpha: 0.2}, epochs: 200,
     input_size: 224}
"""


@pytest.mark.slow
def test_two_worker_trial_through_ray_train_is_one_run(ablation_env):
    tmp, root, client = ablation_env
    text = (ROOT / "ablations" / "profiles.yaml").read_text()
    smoke = text.index("smoke:")
    head, rest = text[:smoke], text[smoke:]
    assert "  resources: {cpu: 1}\n" in rest
    (root / "profiles.yaml").write_text(
        head + rest.replace("  resources: {cpu: 1}\n", "  resources: {cpu: 1, workers: 2}\n", 1)
    )
    (root / "ddp.yaml").write_text(DDP_TABLE)
    result = run_ablation(str(root / "ddp.yaml"), "smoke", ablations_dir=root, workdir=tmp / "runs")
    assert result.ran == ["A"] and not result.failed, result.failed
    runs = children(client, "ddp")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # rank 0 alone logs
    run = runs[0]
    assert run.data.tags["data_parallel_workers"] == "2"
    assert {"top1", "mce", "mfr", "throughput"} <= set(run.data.metrics)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert steps == sorted(set(steps)) and len(steps) == 2  # one point per epoch, none twice
