"""The math of each trainer piece."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from assembled.ablation.profiles import load_profiles
from assembled.data.mixup import mixup_pairs, sample_lambda
from assembled.models import build_model
from assembled.training.config import OptimConfig, TrainConfig
from assembled.training.losses import distillation, smooth, soft_cross_entropy, teacher_probabilities
from assembled.training.optim import param_groups
from assembled.training.schedules import keep_prob, learning_rate

from .conftest import ROOT


def test_label_smoothing_values():
    y = F.one_hot(torch.tensor([2]), 5).float()
    s = smooth(y, 0.1)
    assert s[0, 2].item() == pytest.approx(0.9 + 0.02)
    assert s[0, 0].item() == pytest.approx(0.02)
    assert s.sum().item() == pytest.approx(1.0)


def test_soft_ce_equals_ce_on_one_hot():
    logits = torch.randn(4, 6)
    y = torch.tensor([0, 3, 5, 1])
    assert soft_cross_entropy(logits, F.one_hot(y, 6).float()).item() == pytest.approx(
        F.cross_entropy(logits, y).item(), rel=1e-6
    )


def test_kd_equals_ce_at_t1_with_one_hot_teacher():
    logits = torch.randn(4, 6)
    y = torch.tensor([0, 3, 5, 1])
    teacher_logits = F.one_hot(y, 6).float() * 1e4  # softmax = one-hot
    p = teacher_probabilities(teacher_logits, 1.0)
    assert distillation(logits, p, 1.0).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


def test_kd_temperature_scaling():
    logits, t = torch.randn(3, 4), torch.randn(3, 4)
    T = 2.0
    expected = T**2 * -(F.softmax(t / T, -1) * F.log_softmax(logits / T, -1)).sum(-1).mean()
    assert distillation(logits, teacher_probabilities(t, T), T).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("mixup_type", [1, 2])
def test_mixup_convexity(mixup_type):
    g = torch.Generator().manual_seed(0)
    rows = 8 if mixup_type == 1 else 4
    x = torch.rand(rows, 3, 5, 5)
    y = F.one_hot(torch.arange(rows) % 3, 3).float()
    lam = sample_lambda(4, 0.2, torch.device("cpu"), g)
    assert ((lam >= 0) & (lam <= 1)).all()
    mx, my = mixup_pairs([x, y], lam, mixup_type)
    assert mx.shape[0] == 4 and my.shape == (4, 3)
    assert torch.allclose(my.sum(1), torch.ones(4))
    half = rows // 2
    a, b = x[:half], x[half:]
    if mixup_type == 1:
        expect = lam.view(-1, 1, 1, 1) * a + (1 - lam.view(-1, 1, 1, 1)) * b
    else:
        l1, l2 = lam[:half].view(-1, 1, 1, 1), lam[half:].view(-1, 1, 1, 1)
        expect = torch.cat([l1 * a + (1 - l1) * b, l2 * a + (1 - l2) * b.flip(0)])
    assert torch.allclose(mx, expect)
    # mixed pixels lie between the two sources
    lo = torch.minimum(x[:half], x[half:]) if mixup_type == 1 else None
    if lo is not None:
        assert (mx >= lo - 1e-6).all()


def test_lr_schedule_values():
    cfg = OptimConfig(epochs=10, batch_size=1024, base_lr=0.1, warmup_epochs=2)
    assert cfg.lr == pytest.approx(0.4)  # 0.4 at 1024, the paper's
    spe, total = 100, 1000
    assert learning_rate(0, total, spe, cfg) == 0.0
    assert learning_rate(100, total, spe, cfg) == pytest.approx(0.2)  # half-way through warm-up
    assert learning_rate(200, total, spe, cfg) == pytest.approx(0.4)
    assert learning_rate(600, total, spe, cfg) == pytest.approx(0.2)  # cosine mid-point
    assert learning_rate(1000, total, spe, cfg) == pytest.approx(0.0, abs=1e-12)
    pw = OptimConfig(epochs=120, batch_size=256, schedule="piecewise", warmup_epochs=0)
    assert learning_rate(0, 1200, 10, pw) == pytest.approx(0.1)
    assert learning_rate(300, 1200, 10, pw) == pytest.approx(0.01)  # epoch 30
    assert learning_rate(850, 1200, 10, pw) == pytest.approx(1e-4)  # after epoch 80
    assert learning_rate(1199, 1200, 10, pw) == pytest.approx(1e-5)


def test_keep_prob_schedule():
    assert keep_prob(0, 100, 0.9) == 1.0
    assert keep_prob(50, 100, 0.9) == pytest.approx(0.95)
    assert keep_prob(100, 100, 0.9) == pytest.approx(0.9)


def test_no_decay_on_bias_and_bn():
    m = build_model({"name": "se_resnet50d", "width": 8, "layers": [1, 1, 1, 1]}, 10)
    decay, no_decay = param_groups(m, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    ids = {id(p) for p in no_decay["params"]}
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            assert id(mod.weight) in ids and id(mod.bias) in ids
    assert id(m.fc.bias) in ids and id(m.fc.weight) not in ids
    assert all(p.ndim > 1 for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(m.parameters()))


def test_decay_fc_bias_decays_the_classifier_bias_alone():
    """The official rule (every variable but BN's): the FC bias, the ResNets' only bias, decays."""
    m = build_model({"name": "se_resnet50d", "width": 8, "layers": [1, 1, 1, 1]}, 10)
    decay, no_decay = param_groups(m, 1e-4, decay_fc_bias=True)
    ids = {id(p) for p in decay["params"]}
    assert id(m.fc.bias) in ids and id(m.fc.weight) in ids
    bn = [p for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d) for p in mod.parameters()]
    assert bn and all(id(p) not in ids for p in bn) and len(no_decay["params"]) == len(bn)


def test_decay_fc_bias_off_keeps_old_hashes_and_on_is_a_new_config():
    cfg = TrainConfig(model="resnet50")
    assert "decay_fc_bias" not in cfg._identity()["optim"]  # runs made before the option keep their hash
    on = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"decay_fc_bias": True})})
    assert on.config_hash() != cfg.config_hash()
    profiles = load_profiles(ROOT / "ablations" / "profiles.yaml")
    assert profiles["imagenet"].optim["decay_fc_bias"] is True and profiles["cifar"].optim["decay_fc_bias"] is True
    assert "decay_fc_bias" not in profiles["cifar-cpu"].optim  # measured runs keep their identity


def test_config_hash_ignores_runtime_fields():
    a = TrainConfig(model="resnet50d")
    b = TrainConfig(model={"name": "resnet50d"}, device="cpu", threads=2)
    c = TrainConfig(model="resnet50d", reg={"label_smoothing": 0.1})
    assert a.config_hash() == b.config_hash() != c.config_hash()
    kd = TrainConfig(model="resnet50d", reg={"kd_temperature": 1.0, "teacher_logits": "/tmp/x.pt"})
    kd_elsewhere = TrainConfig(model="resnet50d", reg={"kd_temperature": 1.0, "teacher_logits": "/data/y.pt"})
    assert kd.config_hash() == kd_elsewhere.config_hash() != a.config_hash()
    assert math.isfinite(a.optim.lr)


def test_fp16_trains_with_a_gradient_scaler_and_keeps_it_in_the_checkpoint(tmp_path):
    """The fp16 path for GPUs without bf16 (here on CPU autocast): the scaler is on, its state is
    in the checkpoint, and bf16 (the default) keeps the hashes runs were made with."""
    import torch

    from assembled.training import TrainConfig, Trainer

    base = {
        "model": {"name": "resnet50d", "width": 8, "layers": [1, 1, 1, 1]},
        "data": {"kind": "synthetic", "num_classes": 4, "train_size": 128, "val_size": 64, "image_size": 32,
                 "source_size": 32, "eval_size": 32},
        "optim": {"epochs": 1, "batch_size": 32, "warmup_epochs": 0.3},
        "threads": 1,
    }  # fmt: skip
    cfg = TrainConfig.model_validate({**base, "amp": True, "amp_dtype": "fp16"})
    trainer = Trainer(cfg, tmp_path, progress=False)
    result = trainer.fit()
    assert trainer.scaler.is_enabled() and result.metrics["loss"] == result.metrics["loss"]  # finite, not NaN
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["scaler"]["scale"] == trainer.scaler.get_scale()
    plain = TrainConfig.model_validate(base)
    assert TrainConfig.model_validate({**base, "amp_dtype": "bf16"}).config_hash() == plain.config_hash()
    assert cfg.config_hash() != TrainConfig.model_validate({**base, "amp": True}).config_hash()


def test_a_kd_table_stays_on_the_card_only_when_it_fits():
    """CIFAR's teacher table (50k x 10 fp16, 1 MB) and ImageNet's (1.28M x 1000 fp16, 2.6 GB) sit
    on a 141-GB H200, where gathering a batch's rows needs no host sync; ImageNet's does not go
    on a 16-GB card (a tenth of it is the bound), where it stays on the host, pinned."""
    from assembled.training.trainer import fits_on_device

    h200, v100 = 141 * 2**30, 16 * 2**30
    assert fits_on_device(50_000 * 10 * 2, v100)
    assert fits_on_device(1_281_167 * 1000 * 2, h200)
    assert not fits_on_device(1_281_167 * 1000 * 2, v100)


def test_gradient_accumulation_takes_the_step_one_pass_would(tmp_path):
    """optim.accumulation_steps splits a step's batch into micro-batches and adds their gradients:
    without BatchNorm (which sees micro-batches) the weights after a step are those of one pass
    over the whole batch, with soft targets (Mixup, smoothing) and a KD term alike; a batch that
    does not split evenly is refused when the config is read."""
    import pydantic
    import torch.nn as nn

    from assembled.training import TrainConfig, Trainer

    torch.manual_seed(0)
    x = torch.randn(12, 3, 8, 8)
    target = torch.softmax(torch.randn(12, 5), 1)
    teacher = torch.softmax(torch.randn(12, 5), 1)
    y = target.argmax(1)
    after = []
    for k in (1, 2, 3):
        cfg = TrainConfig.model_validate(
            {"device": "cpu", "optim": {"batch_size": 12, "accumulation_steps": k}, "reg": {"kd_temperature": 2.0}}
        )
        torch.manual_seed(1)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        loss = Trainer(cfg, tmp_path / str(k), progress=False)._step(model, opt, x, target, y, teacher)
        after.append((loss.item(), torch.cat([p.detach().flatten() for p in model.parameters()])))
    for loss, weights in after[1:]:
        assert loss == pytest.approx(after[0][0], rel=1e-5)
        assert torch.allclose(weights, after[0][1], atol=1e-6)
    torch.manual_seed(1)
    start = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    assert not torch.allclose(after[0][1], torch.cat([p.detach().flatten() for p in start.parameters()]))  # it moved
    with pytest.raises(pydantic.ValidationError, match="equal micro-batches"):
        TrainConfig.model_validate({"optim": {"batch_size": 12, "accumulation_steps": 5}})


def test_a_compiled_network_trains_as_the_plain_one_without_recompiling_for_dropblock(tmp_path):
    """``compile`` traces the network once per mode: DropBlock's keep_prob, a new value every step
    of its schedule, is an input to the graph (torch 2.14 does not specialise float attributes;
    measured: 2 graphs over 12 values with the inductor backend too), not a constant to recompile
    for. The eager backend runs the traced graph op by op: the losses equal the plain network's."""
    from torch._dynamo.utils import counters

    from assembled.training import TrainConfig, Trainer

    base = {
        "model": {"name": "resnet50d", "width": 8, "layers": [1, 1, 1, 1], "small_input": True, "dropblock": True},
        "data": {"kind": "synthetic", "num_classes": 4, "train_size": 96, "val_size": 32, "image_size": 16,
                 "source_size": 16, "eval_size": 16},
        "optim": {"epochs": 2, "batch_size": 16, "warmup_epochs": 0.3},
        "reg": {"dropblock_keep_prob": 0.8},
        "device": "cpu",
        "threads": 1,
    }  # fmt: skip
    plain = Trainer(TrainConfig.model_validate(base), tmp_path / "plain", progress=False).fit()
    torch._dynamo.reset()
    counters.clear()
    compiled_cfg = TrainConfig.model_validate({**base, "compile": "eager"})
    compiled = Trainer(compiled_cfg, tmp_path / "compiled", progress=False).fit()
    assert compiled_cfg.config_hash() == TrainConfig.model_validate(base).config_hash()  # how, not what
    assert [h["loss"] for h in compiled.history] == [h["loss"] for h in plain.history]
    assert compiled.metrics["top1"] == plain.metrics["top1"]
    # train with keep_prob 1 (its fast path), train with keep_prob < 1, evaluate: a graph each
    assert 2 <= counters["stats"]["unique_graphs"] <= 3, dict(counters["stats"])
    state = torch.load(tmp_path / "compiled" / "last.pt", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["model"])  # checkpoints load uncompiled
