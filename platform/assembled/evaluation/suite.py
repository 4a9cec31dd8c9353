"""The evaluation suite run at the end of every trial and by ``assembled evaluate``:
top-1/top-5, mCE (+ per-corruption CE and per-severity errors), mFR and mT5D (+ per
perturbation), throughput and its ratio to ResNet-50, MACs and params.

Metric names (MLflow): top1, top5, mce, mce_unnormalized, relative_mce, mfr, mt5d, ce_<c>,
cerr_<c> (mean error x100), err_<c>_<s>, fr_<p>, fp_<p> (flip probability x100), t5d_<p>,
throughput, throughput_r50, throughput_ratio_r50, throughput_int8 (MobileNet), macs, params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import corruptions, val_dataset
from ..data.corruptions.params import NATIVE, severity_set
from ..data.datasets import val_context
from ..data.loaders import eval_batches, loader_for
from ..data.perturbations import PERTURBATIONS, param_set
from ..training.config import TrainConfig
from .complexity import count_macs, count_params
from .config import EvalConfig
from .inference import Inference
from .reference import ALEXNET_CE, ALEXNET_CLEAN_ERROR, ALEXNET_FP
from .robustness import (
    clean_tensor,
    corruption_errors,
    flip_rates,
    folder_corruption_errors,
    normalised_ce,
    relative_mce,
)
from .throughput import quantized_cpu_throughput, reference_model, throughput_with_ratio
from .top1 import evaluate_top1


@dataclass
class EvalResult:
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[float]] = field(default_factory=dict)


def _use_alexnet(cfg: EvalConfig, size: int, num_classes: int) -> bool:
    if cfg.reference == "alexnet":
        return True
    return cfg.reference == "auto" and size >= 224 and num_classes >= 1000


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    train_cfg: TrainConfig,
    cfg: EvalConfig,
    device: torch.device,
    num_classes: int,
    progress: bool = True,
    clean: dict[str, float] | None = None,
    throughput: bool = True,
    on_progress: Callable[[str, float], None] | None = None,
) -> EvalResult:
    """``throughput=False`` leaves timing to the caller (the ablation runner times every
    architecture alone on a node after training, not while other trials share the cores).
    ``on_progress(phase, fraction)`` hears how far the mCE and mFR passes are (a long
    evaluation is otherwise silent). Every pass runs as the training did (``Inference``: its
    precision and layout), the clean one too."""
    how = Inference.for_training(train_cfg, device)
    model = how.prepare(model)
    size = train_cfg.data.eval_crop
    if clean is None:
        clean = evaluate_top1(model, eval_batches(train_cfg.data, device), how)
    metrics = {k: clean[k] for k in ("top1", "top5")}
    metrics["params"] = float(count_params(model))
    metrics["macs"] = float(count_macs(model, size))
    result = EvalResult(metrics, {"eval_hash": cfg.identity(), "eval_compute": how.describe()})
    if cfg.robustness != "none":
        step = _Robustness(model, train_cfg, cfg, how, num_classes, progress, on_progress)
        step.corruptions(result, clean)
        step.perturbations(result)
    if cfg.throughput and throughput:
        _throughput(model, train_cfg, cfg, device, num_classes, result)
    return result


class _Robustness:
    """The mCE and mFR passes of one evaluation, over one set of uint8 evaluation crops (built
    once, on first use: synthetic data renders on build)."""

    def __init__(
        self,
        model: nn.Module,
        train_cfg: TrainConfig,
        cfg: EvalConfig,
        how: Inference,
        num_classes: int,
        progress: bool,
        on_progress: Callable[[str, float], None] | None,
    ) -> None:
        self.model, self.train_cfg, self.cfg, self.how = model, train_cfg, cfg, how
        self.size = train_cfg.data.eval_crop
        self.full = cfg.robustness == "full"
        self.alexnet = _use_alexnet(cfg, self.size, num_classes)
        self.progress, self.on_progress = progress, on_progress
        self._clean_ds = None

    def clean_ds(self):
        if self._clean_ds is None:
            self._clean_ds = val_dataset(self.train_cfg.data, normalised=False)
        return self._clean_ds

    def _hear(self, phase: str) -> Callable[[float], None] | None:
        on = self.on_progress
        return on and (lambda f: on(phase, f))

    def corruptions(self, result: EvalResult, clean: dict[str, float]) -> None:
        """Errors per corruption and severity, CE (AlexNet-normalised on ImageNet), mCE."""
        cfg, tags, metrics = self.cfg, result.tags, result.metrics
        names = corruptions.names(cfg.extra_corruptions)
        family = severity_set(self.size)
        tags["corruption_params"] = _corruption_params(cfg, family, self.size)
        tags["mce_mean"] = cfg.mce_mean()
        tags["mce_reference"] = (
            "alexnet" if self.alexnet else "none (unnormalised; tables normalise by their baseline row)"
        )
        if cfg.imagenet_c:
            errors = folder_corruption_errors(self.model, cfg.imagenet_c, names, self.how, self.size)
            tags["corruption_source"] = f"folder {cfg.imagenet_c}"
        else:
            images, labels = clean_tensor(self.clean_ds(), cfg.mce_images or (None if self.full else 500))
            errors = corruption_errors(
                self.model,
                images,
                labels,
                names,
                self.how,
                cfg.seed,
                family,
                self.progress,
                cfg.released_jpeg,
                on_progress=self._hear("mCE"),
                scaled=cfg.scale_corruptions,
            )
            tags["corruption_source"] = f"generated on the fly from {images.shape[0]} evaluation images"
        result.errors = errors
        ce = normalised_ce(errors, ALEXNET_CE if self.alexnet else None)
        raw = normalised_ce(errors, None)
        for name in names:
            metrics[f"ce_{name}"] = ce[name]
            metrics[f"cerr_{name}"] = raw[name]
            for s, e in enumerate(errors[name], 1):
                metrics[f"err_{name}_{s}"] = 100 * e
        metrics["mce"] = sum(ce.values()) / len(ce)
        if cfg.extra_corruptions:  # the standard mean too, for comparisons with Hendrycks' tables
            metrics["mce_15"] = sum(ce[n] for n in corruptions.STANDARD) / len(corruptions.STANDARD)
        metrics["mce_unnormalized"] = sum(raw.values()) / len(raw)
        if self.alexnet:
            metrics["relative_mce"] = relative_mce(errors, 1 - clean["top1"] / 100, ALEXNET_CE, ALEXNET_CLEAN_ERROR)

    def perturbations(self, result: EvalResult) -> None:
        """Flip rates and top-5 distances per perturbation (ImageNet-P uses 10,000 of 50,000
        images; here a subset of the evaluation images), FR and mFR."""
        cfg, metrics = self.cfg, result.metrics
        n_p = cfg.mfr_images or (1000 if self.full else 100)
        p_images, _ = clean_tensor(self.clean_ds(), n_p)
        p_context, _ = clean_tensor(val_context(self.train_cfg.data), n_p)
        fps, t5ds = flip_rates(
            self.model,
            p_images,
            self.how,
            cfg.seed,
            self.progress,
            contexts=p_context,
            on_progress=self._hear("mFR"),
            x264=cfg.perturbation_x264,
        )
        p_set = param_set(self.size)
        x264 = cfg.perturbation_x264 and p_set.video
        result.tags["perturbation_params"] = f"{p_set.name} (reference scripts, difficulty 1{', x264' if x264 else ''})"
        for name in PERTURBATIONS:
            metrics[f"fp_{name}"] = 100 * fps[name]
            metrics[f"fr_{name}"] = 100 * fps[name] / ALEXNET_FP[name] if self.alexnet else 100 * fps[name]
            metrics[f"t5d_{name}"] = t5ds[name]
        metrics["mfr"] = sum(metrics[f"fr_{p}"] for p in PERTURBATIONS) / len(PERTURBATIONS)
        metrics["mt5d"] = sum(t5ds.values()) / len(t5ds)
        result.tags["mfr_images"] = str(p_images.shape[0])


def _throughput(
    model: nn.Module,
    train_cfg: TrainConfig,
    cfg: EvalConfig,
    device: torch.device,
    num_classes: int,
    result: EvalResult,
) -> None:
    """Images/s and the ratio to a ResNet-50 of the row's scale; int8 for MobileNet-V1."""
    size = train_cfg.data.eval_crop
    ref = reference_model(train_cfg.model)
    result.metrics |= throughput_with_ratio(
        model, size, num_classes, cfg.throughput_batch, device, cfg.throughput_repeats, reference=ref
    )
    if train_cfg.model.arch == "mobilenet_v1":
        try:
            result.metrics["throughput_int8"] = quantized_cpu_throughput(model, size)
        except Exception as e:  # quantisation support varies by build; say why and go on
            result.tags["throughput_int8_error"] = f"{type(e).__name__}: {e}"[:500]


def _corruption_params(cfg: EvalConfig, family: str, size: int) -> str:
    n = 19 if cfg.extra_corruptions else 15
    native = NATIVE[family]
    if size == native:
        return f"{family} (Hendrycks, {n} corruptions)"
    how = f"scaled x{size / native:.3g}" if cfg.scale_corruptions else f"as published for {native} px (official)"
    return f"{family} (Hendrycks, {n} corruptions, spatial constants {how})"


def retrieval_metrics(result, train_cfg: TrainConfig, cfg: EvalConfig, device: torch.device):
    """A retrieval net's evaluation: Recall@K on the unseen classes (from its last epoch, or
    measured now when the run is only re-evaluated), MACs and params. No mCE / mFR: the paper's
    retrieval tables report Recall@K alone."""
    from .retrieval import evaluate_recall

    ks = train_cfg.head.recall_k
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("recall_at_")}
    if len(metrics) < len(ks) or result.resumed_from >= train_cfg.optim.epochs:
        loader = loader_for(val_dataset(train_cfg.data), 128, False, 0)
        metrics = evaluate_recall(result.model, loader, device, ks)
    size = train_cfg.data.eval_crop
    metrics |= {"params": float(count_params(result.model)), "macs": float(count_macs(result.model, size))}
    tags = {"eval_hash": cfg.identity(), "task": "retrieval", "recall_protocol": "cosine, every test image a query"}
    return metrics, tags


def suite_after_training(
    train_cfg: TrainConfig,
    robustness: str = "quick",
    eval_cfg: EvalConfig | None = None,
    throughput: bool = True,
    on_progress: Callable[[str, float], None] | None = None,
):
    """A hook for ``train_tracked``: evaluate the trained model; returns its metrics and the tags
    that say how they were made (``train_tracked`` writes both)."""
    cfg = eval_cfg or EvalConfig(robustness=robustness)

    def run(result) -> tuple[dict[str, float], dict[str, str]]:
        device = next(result.model.parameters()).device
        if train_cfg.head.kind == "embedding":
            return retrieval_metrics(result, train_cfg, cfg, device)
        # a run that trained now has its top-1; one only re-evaluated is measured again
        trained_now = result.resumed_from < train_cfg.optim.epochs
        clean = {k: result.metrics[k] for k in ("top1", "top5") if k in result.metrics} if trained_now else None
        num_classes = result.model.fc.out_features if hasattr(result.model, "fc") else train_cfg.data.num_classes
        if hasattr(result.model, "classifier"):
            num_classes = result.model.classifier[-1].out_features
        ev = evaluate_model(
            result.model,
            train_cfg,
            cfg,
            device,
            num_classes,
            progress=False,
            clean=clean if clean and len(clean) == 2 else None,
            throughput=throughput,
            on_progress=on_progress,
        )
        return ev.metrics, ev.tags

    return run
