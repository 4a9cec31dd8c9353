"""Corruptions, perturbations, mCE/mFR math, folder reading, the evaluate command."""

from __future__ import annotations

import pytest
import torch
import torchvision
from mlflow.tracking import MlflowClient
from torch import nn

from assembled.data import corruptions
from assembled.data.corruptions import STANDARD, corrupt, names
from assembled.data.perturbations import PERTURBATIONS, clean_frame, frames_of, sequence
from assembled.data.synthetic import SyntheticShapes
from assembled.evaluation.reference import ALEXNET_CE
from assembled.evaluation.robustness import (
    corruption_errors,
    flip_rates,
    folder_corruption_errors,
    normalised_ce,
    top5_distance,
)

from .conftest import ROOT, cli


def smooth_images(n: int, size: int) -> torch.Tensor:
    """Synthetic scenes without pixel noise, so pixel distances measure the corruption only."""
    x = SyntheticShapes(4, n, size, seed=1).images.float() / 255
    return corruptions.ops.gaussian_blur(x, 1.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean().clamp_min(1e-12)))


@pytest.mark.parametrize("size", [32, 64, 224])
@pytest.mark.parametrize("name", names(include_extra=True))
def test_corruption_deterministic_and_changes_image(name, size):
    x = smooth_images(4, size)
    a, b = corrupt(x, name, 3, seed=5), corrupt(x, name, 3, seed=5)
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert (a - x).abs().mean() > 1e-3


def decorrelation(a: torch.Tensor, b: torch.Tensor) -> float:
    """1 - mean Pearson correlation of corrupted and clean images: how much structure is lost."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return 1 - float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-9)).mean())


# Elastic's published severities 1-2 are large smooth warps, 3-5 fine ones: not ordered by distance.
@pytest.mark.parametrize("size", [64, 224])  # Tiny-ImageNet-C's constants and ImageNet-C's
@pytest.mark.parametrize("name", [n for n in names() if n != "elastic_transform"])
def test_corruption_degrades_with_severity(name, size):
    """Severity 1 < 3 < 5 in lost structure, and PSNR to the clean image falls from 1 to 5.

    (Neighbouring severities are not always ordered: the published glass-blur and pixelate
    constants trade one kind of damage for another between severities 1 and 2.)"""
    x = smooth_images(8, size)
    out = {s: corrupt(x, name, s, seed=0) for s in (1, 3, 5)}
    loss = [decorrelation(out[s], x) for s in (1, 3, 5)]
    assert loss[0] < loss[1] < loss[2], (name, loss)
    if name != "frost":  # frost adds a bright photograph: PSNR depends on which one is drawn
        assert psnr(out[1], x) > psnr(out[5], x), name


def test_random_corruptions_depend_on_seed():
    x = smooth_images(2, 32)
    assert not torch.equal(corrupt(x, "gaussian_noise", 2, seed=0), corrupt(x, "gaussian_noise", 2, seed=1))


def test_unknown_corruption():
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        corrupt(torch.zeros(1, 3, 8, 8), "rain", 1)


class Constant(nn.Module):
    def __init__(self, k: int = 10) -> None:
        super().__init__()
        self.k = k
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(x.shape[0], self.k)
        out[:, 3] = 1
        return out + self.dummy


def test_constant_model_never_flips():
    images = (smooth_images(6, 32) * 255).to(torch.uint8)
    fps, t5d = flip_rates(Constant(), images, torch.device("cpu"))
    assert set(fps) == set(PERTURBATIONS)
    assert all(v == 0.0 for v in fps.values())
    assert all(v == 0.0 for v in t5d.values())


def test_sequences_shape_and_clean_frame():
    """Frame counts and the clean frame's place as in the reference scripts (224: ImageNet-P)."""
    x = (smooth_images(2, 32) * 255).floor() / 255
    counts = {"translate": 41, "motion_blur": 31}
    clean = {"gaussian_noise": 0, "shot_noise": 0, "zoom_blur": 0, "brightness": 15, "translate": 20}
    clean |= {"rotate": 15, "tilt": None, "scale": 24, "motion_blur": None, "snow": None}
    for name in PERTURBATIONS:
        assert frames_of(name, 224) == counts.get(name, 31) and clean_frame(name, 224) == clean[name]
    # CIFAR-10-P (32 px): 21 motion frames, 15 translate frames centred on 7, scale 1.0 at frame 15
    assert (frames_of("motion_blur", 32), frames_of("translate", 32)) == (21, 15)
    assert (clean_frame("translate", 32), clean_frame("scale", 32)) == (7, 15)
    for name in PERTURBATIONS:
        seq = sequence(x, name)
        assert seq.shape[0] == frames_of(name, 32)
        at = clean_frame(name, 32)
        if at is not None:
            assert torch.allclose(seq[at], x, atol=1.5 / 255), name
        assert not torch.allclose(seq[-1], seq[0])


def test_top5_distance():
    prev = torch.tensor([[0, 1, 2, 3, 4]])
    assert top5_distance(prev, prev).item() == 0
    assert top5_distance(prev, torch.tensor([[1, 0, 2, 3, 4]])).item() == 2
    assert top5_distance(prev, torch.tensor([[5, 6, 7, 8, 9]])).item() == 5 + 4 + 3 + 2 + 1


def test_normalisation_by_hand():
    errors = {"gaussian_noise": [0.1, 0.2, 0.3, 0.4, 0.5], "fog": [0.5] * 5}
    ce = normalised_ce(errors, ALEXNET_CE)
    assert ce["gaussian_noise"] == pytest.approx(100 * 0.3 / 0.886428)
    assert ce["fog"] == pytest.approx(100 * 0.5 / 0.819324)
    baseline = {"gaussian_noise": [0.2] * 5, "fog": [0.25] * 5}
    rel = normalised_ce(errors, baseline)
    assert rel == pytest.approx({"gaussian_noise": 150.0, "fog": 200.0})
    assert normalised_ce(errors, None)["fog"] == pytest.approx(50.0)


def test_imagenet_c_folder_matches_on_the_fly(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model.eval()
    x = (smooth_images(9, 32) * 255).round().to(torch.uint8)
    labels = torch.tensor([0, 1, 2] * 3)
    chosen = ["gaussian_noise", "contrast"]
    onthefly = corruption_errors(model, x, labels, chosen, torch.device("cpu"), seed=0)
    root = tmp_path / "imagenet-c"
    for name in chosen:
        for s in range(1, 6):
            xc = corrupt(x.float() / 255, name, s, seed=0)
            for i in range(x.shape[0]):
                d = root / name / str(s) / f"class{int(labels[i])}"
                d.mkdir(parents=True, exist_ok=True)
                u8 = (xc[i] * 255).round().to(torch.uint8)
                torchvision.io.write_png(u8, str(d / f"{i:03d}.png"))
    from_folder = folder_corruption_errors(model, root, chosen, torch.device("cpu"), 32)
    for name in chosen:
        assert from_folder[name] == pytest.approx(onthefly[name], abs=1e-6)
    with pytest.raises(Exception, match="frost/1: missing from the ImageNet-C folder"):
        folder_corruption_errors(model, root, ["frost"], torch.device("cpu"), 32)


@pytest.mark.slow
def test_evaluate_command_logs_the_suite(tmp_path, mlflow_uri):
    quick = ROOT / "ablations" / "train" / "resnet50d_sk_quick.yaml"
    r = cli("train", str(quick), "--set", "optim.epochs=1", "--set", "data.train_size=256", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (ckpt,) = list((tmp_path / "runs").glob("*/last.pt"))
    r = cli("evaluate", str(ckpt), "--mce-images", "25", "--mfr-images", "8", "--extra-corruptions", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    run = MlflowClient(mlflow_uri).get_run(ckpt.parent.name)
    m = run.data.metrics
    for key in ["top1", "mce", "mfr", "throughput", "throughput_ratio_r50", "macs", "params"]:
        assert key in m, key
    # the official code's mean over 19, the standard 15 beside it, and a tag that says which is which
    ce = {k[3:]: v for k, v in m.items() if k.startswith("ce_")}
    assert len(ce) == 19 and m["mce"] == pytest.approx(sum(ce.values()) / 19)
    assert m["mce_15"] == pytest.approx(sum(ce[n] for n in STANDARD) / 15) and m["mce_15"] != m["mce"]
    assert run.data.tags["mce_mean"].startswith("19 corruptions")
    assert sum(k.startswith("fr_") for k in m) == 10
    assert 0 < m["mce"] <= 100 and m["throughput"] > 0
    assert run.data.tags["corruption_params"].startswith("cifar")  # 48-px crops
    bad = cli("evaluate", str(ckpt), "--model", "resnet50", cwd=tmp_path)
    assert bad.returncode == 2 and "last.pt: weights do not fit model" in bad.stderr
    missing = cli("evaluate", str(tmp_path / "nope.pt"), cwd=tmp_path)
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr


def test_int8_mobilenet_is_quantized_and_measured():
    from assembled.evaluation.throughput import quantize_int8, quantized_cpu_throughput
    from assembled.models import build_model

    model = build_model({"name": "mobilenet_v1", "width_mult": 0.25}, num_classes=10).eval()
    q = quantize_int8(model, 64)
    kinds = {type(m).__module__ for m in q.modules()}
    assert any(k.startswith("torch.ao.nn.quantized") for k in kinds), kinds
    x = torch.rand(2, 3, 64, 64)
    assert q(x).shape == (2, 10) and torch.isfinite(q(x)).all()
    threads = torch.get_num_threads()
    ips = quantized_cpu_throughput(model, 64, repeats=2)
    assert ips > 0 and torch.get_num_threads() == threads  # one thread while measuring, then restored


def test_evaluation_progress_counts_to_one_without_a_progress_bar():
    """The ablation's live line hears how far mCE / mFR are even with tqdm disabled (a disabled
    bar counts nothing: the fractions once stayed at 0)."""
    from assembled.evaluation.robustness import corruption_errors, flip_rates
    from assembled.models import build_model

    model = build_model({"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1]}, num_classes=4).eval()
    x = (torch.rand(6, 3, 32, 32) * 255).to(torch.uint8)
    seen: list[float] = []
    corruption_errors(model, x, torch.zeros(6, dtype=torch.long), ["gaussian_noise", "fog"], torch.device("cpu"),
                      on_progress=seen.append)  # fmt: skip
    assert seen == [0.5, 1.0]
    seen.clear()
    flip_rates(model, x, torch.device("cpu"), names=["translate", "brightness"], on_progress=seen.append)
    assert seen == [0.5, 1.0]


def test_top1_counts_the_classes_a_model_predicts():
    """val_pred_classes over batches (summed on the device, no per-batch host sync): a model
    that always answers class 2 predicts one class; one that reads the answer off its input, all."""
    import torch.nn as nn

    from assembled.evaluation.top1 import evaluate_top1

    class Reads(nn.Module):  # the class is the bright channel; a 4th class it never answers
        def forward(self, x):
            return torch.cat([x.mean((2, 3)), torch.zeros(x.shape[0], 1)], 1)

    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 0.0, 1.0, 0.0]).expand(x.shape[0], 4)

    images = torch.zeros(12, 3, 8, 8, dtype=torch.uint8)
    labels = torch.arange(12) % 3
    images[torch.arange(12), labels] = 255
    batches = [(images[i : i + 5], labels[i : i + 5], None) for i in range(0, 12, 5)]
    dev = torch.device("cpu")
    reads = evaluate_top1(Reads(), batches, dev)
    assert reads["top1"] == 100.0 and reads["val_pred_classes"] == 3.0
    const = evaluate_top1(Constant(), batches, dev)
    assert const["val_pred_classes"] == 1.0 and const["top1"] == pytest.approx(100 * 4 / 12)


@pytest.mark.parametrize("amp", [False, True])
def test_clean_and_corrupted_sets_run_in_the_training_precision(amp):
    """Relative mCE subtracts the clean error from each corrupted one: the clean, corrupted and
    perturbed passes all run as the training did (the issue: clean top-1 in bf16, corrupted
    errors in FP32). On a CPU, bf16 autocast stands in for a GPU's."""
    from assembled.evaluation.config import EvalConfig
    from assembled.evaluation.suite import evaluate_model
    from assembled.models import build_model
    from assembled.training.config import TrainConfig

    cfg = TrainConfig.model_validate(
        {"model": {"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1]}, "device": "cpu", "amp": amp,
         "channels_last": True, "data": {"kind": "synthetic", "num_classes": 4, "train_size": 64, "val_size": 16,
                                          "image_size": 32}}
    )  # fmt: skip
    model = build_model(cfg.model, 4)
    seen: set[tuple] = set()
    model.fc.register_forward_hook(lambda m, i, out: i[0].shape[0] > 1 and seen.add((out.dtype, i[0].shape[0])))

    def layout(m, i):  # the passes' batches (the MACs count's one image is not one)
        if i[0].shape[0] > 1:
            seen.add(i[0].is_contiguous(memory_format=torch.channels_last))

    model.stem.register_forward_pre_hook(layout)
    ev = EvalConfig(mce_images=4, mfr_images=2, throughput=False)
    result = evaluate_model(model, cfg, ev, torch.device("cpu"), 4, progress=False)
    assert {"top1", "mce", "mfr"} <= result.metrics.keys()
    want = torch.bfloat16 if amp else torch.float32
    assert {s[0] for s in seen if isinstance(s, tuple)} == {want}  # every pass
    assert {s[1] for s in seen if isinstance(s, tuple)} >= {16, 4}  # clean (16 images) and corrupted (4) passes
    assert {s for s in seen if isinstance(s, bool)} == {True}  # channels_last inputs throughout
    assert result.tags["eval_compute"] == ("cpu/bf16 channels_last" if amp else "cpu/fp32 channels_last")
