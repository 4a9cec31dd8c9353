"""The evaluation suite run at the end of every trial and by ``assembled evaluate``:
top-1/top-5, mCE (+ per-corruption CE and per-severity errors), mFR and mT5D (+ per
perturbation), throughput and its ratio to ResNet-50, MACs and params.

Metric names (MLflow): top1, top5, mce, mce_unnormalized, relative_mce, mfr, mt5d, ce_<c>,
cerr_<c> (mean error x100), err_<c>_<s>, fr_<p>, fp_<p> (flip probability x100), t5d_<p>,
throughput, throughput_r50, throughput_ratio_r50, throughput_int8 (MobileNet), macs, params.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from ..data import corruptions, perturbations, val_dataset
from ..data.corruptions.params import NATIVE, severity_set
from ..data.datasets import val_context
from ..data.loaders import eval_batches, loader_for
from ..data.perturbations import PERTURBATIONS, param_set
from ..training.config import TrainConfig
from ..training.trainer import evaluate_top1
from .complexity import count_macs, count_params
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

# what else the numbers depend on; a change re-evaluates every stored row (tag eval_hash)
PROTOCOL = {
    "throughput": "timed alone on a node, once per inference network (DropBlock off), min/median/max, "
    "ratio to a ResNet-50 of the row's scale",
    "eval_resize": "int(size / 0.875), as the official code",
}


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    robustness: Literal["none", "quick", "full"] = "quick"
    extra_corruptions: bool = Field(
        False, description="mCE over the official code's 19 corruptions (the paper's Table 7), not the standard 15"
    )
    scale_corruptions: bool = Field(
        True,
        description="scale the 224-px set's spatial constants to the evaluation size (off: kept as published, as the "
        "official Assemble generator did at 256 px)",
    )
    mce_images: int | None = Field(None, ge=1, description="subset for mCE (default: quick 500, full all)")
    mfr_images: int | None = Field(None, ge=1, description="subset for mFR (default: quick 100, full 1000)")
    reference: Literal["auto", "alexnet", "none"] = "auto"
    imagenet_c: str | None = Field(None, description="pre-generated ImageNet-C folder to read instead")
    released_jpeg: bool = Field(
        True, description="save 224/64-px corrupted sets as JPEG q85 like the released ImageNet-C files"
    )
    perturbation_x264: bool = Field(
        False,
        description="x264-encode the 224/64-px perturbation sequences as the ImageNet-P videos were (needs PyAV; "
        "~1 s per sequence at 224 px on a CPU core)",
    )
    throughput: bool = True
    throughput_batch: int = Field(64, ge=1)
    throughput_repeats: int = Field(5, ge=1)
    seed: int = 0

    @field_validator("perturbation_x264")
    @classmethod
    def _codec_installed(cls, on: bool) -> bool:
        # checked where the config is read, not after a trial has trained for hours
        from ..data.video import available

        if on and not available():
            raise ValueError("needs PyAV with libx264: `make install` (or pip install 'assembled[video]')")
        return on

    def mce_mean(self) -> str:
        """Which mean ``mce`` is, for tags, manifests and reports."""
        if self.extra_corruptions:
            return "19 corruptions (the 15 standard + the official code's 4 extras, as the paper)"
        return "15 standard corruptions (Hendrycks)"

    def identity(self) -> str:
        """What the numbers depend on: these settings, the generation of corrupted and
        perturbed images, and the throughput protocol. Equal identities give comparable numbers."""
        d = self.model_dump(mode="json")
        d["implementation"] = [corruptions.IMPLEMENTATION, perturbations.IMPLEMENTATION]
        d["protocol"] = PROTOCOL
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


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
    evaluation is otherwise silent)."""
    model.eval()
    size = train_cfg.data.eval_crop
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {"eval_hash": cfg.identity()}
    if clean is None:
        clean = evaluate_top1(model, eval_batches(train_cfg.data, device), device)
    metrics |= {k: clean[k] for k in ("top1", "top5")}
    metrics["params"] = float(count_params(model))
    metrics["macs"] = float(count_macs(model, size))
    result = EvalResult(metrics, tags)
    if cfg.robustness != "none":
        full = cfg.robustness == "full"
        cache: list = []

        def clean_ds():
            # uint8 evaluation crops, built once for mCE and mFR (synthetic data renders on build)
            if not cache:
                cache.append(val_dataset(train_cfg.data, normalised=False))
            return cache[0]

        names = corruptions.names(cfg.extra_corruptions)
        family = severity_set(size)
        tags["corruption_params"] = _corruption_params(cfg, family, size)
        tags["mce_mean"] = cfg.mce_mean()
        alexnet = _use_alexnet(cfg, size, num_classes)
        tags["mce_reference"] = "alexnet" if alexnet else "none (unnormalised; tables normalise by their baseline row)"
        if cfg.imagenet_c:
            errors = folder_corruption_errors(model, cfg.imagenet_c, names, device, size)
            tags["corruption_source"] = f"folder {cfg.imagenet_c}"
        else:
            images, labels = clean_tensor(clean_ds(), cfg.mce_images or (None if full else 500))
            errors = corruption_errors(
                model,
                images,
                labels,
                names,
                device,
                cfg.seed,
                family,
                progress,
                cfg.released_jpeg,
                on_progress=on_progress and (lambda f: on_progress("mCE", f)),
                scaled=cfg.scale_corruptions,
            )
            tags["corruption_source"] = f"generated on the fly from {images.shape[0]} evaluation images"
        result.errors = errors
        ce = normalised_ce(errors, ALEXNET_CE if alexnet else None)
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
        if alexnet:
            metrics["relative_mce"] = relative_mce(errors, 1 - clean["top1"] / 100, ALEXNET_CE, ALEXNET_CLEAN_ERROR)
        # mFR on a subset of the evaluation images (ImageNet-P uses 10,000 of 50,000)
        n_p = cfg.mfr_images or (1000 if full else 100)
        p_images, _ = clean_tensor(clean_ds(), n_p)
        p_context, _ = clean_tensor(val_context(train_cfg.data), n_p)
        fps, t5ds = flip_rates(
            model,
            p_images,
            device,
            cfg.seed,
            progress,
            contexts=p_context,
            on_progress=on_progress and (lambda f: on_progress("mFR", f)),
            x264=cfg.perturbation_x264,
        )
        p_set = param_set(size)
        x264 = cfg.perturbation_x264 and p_set.video
        tags["perturbation_params"] = f"{p_set.name} (reference scripts, difficulty 1{', x264' if x264 else ''})"
        for name in PERTURBATIONS:
            metrics[f"fp_{name}"] = 100 * fps[name]
            metrics[f"fr_{name}"] = 100 * fps[name] / ALEXNET_FP[name] if alexnet else 100 * fps[name]
            metrics[f"t5d_{name}"] = t5ds[name]
        metrics["mfr"] = sum(metrics[f"fr_{p}"] for p in PERTURBATIONS) / len(PERTURBATIONS)
        metrics["mt5d"] = sum(t5ds.values()) / len(t5ds)
        tags["mfr_images"] = str(p_images.shape[0])
    if cfg.throughput and throughput:
        ref = reference_model(train_cfg.model_config_resolved())
        metrics |= throughput_with_ratio(
            model, size, num_classes, cfg.throughput_batch, device, cfg.throughput_repeats, reference=ref
        )
        if train_cfg.model_config_resolved().arch == "mobilenet_v1":
            try:
                metrics["throughput_int8"] = quantized_cpu_throughput(model, size)
            except Exception as e:  # quantisation support varies by build; say why and go on
                tags["throughput_int8_error"] = f"{type(e).__name__}: {e}"[:500]
    return result


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
    """A hook for ``train_tracked``: evaluate the trained model, tag the run, return metrics."""
    cfg = eval_cfg or EvalConfig(robustness=robustness)

    def run(result, callback) -> dict[str, float]:
        from ..tracking.store import retry_locked

        device = next(result.model.parameters()).device
        if train_cfg.head.kind == "embedding":
            metrics, tags = retrieval_metrics(result, train_cfg, cfg, device)
            for k, v in tags.items():
                retry_locked(lambda k=k, v=v: callback.client.set_tag(callback.run_id, k, v))
            return metrics
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
        for k, v in ev.tags.items():
            retry_locked(lambda k=k, v=v: callback.client.set_tag(callback.run_id, k, v))
        return ev.metrics

    return run
