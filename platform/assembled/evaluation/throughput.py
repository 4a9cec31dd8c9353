"""Inference throughput as the paper measures it: images/s, batch 64, FP32, eval mode, after
warm-up, with device synchronisation; and the ratio to a ResNet-50 of the same scale timed in
the same process, the figure that compares across machines (a row's own R50 baseline reads 1.00
everywhere).

A timing means something only when nothing else runs on the device, and even then a shared
machine drifts (another tenant, frequency scaling). So networks are timed in interleaved
rounds (each round times every network once, each repeat lasting at least ``min_seconds``),
the figure is the median over rounds, the ratio to R50 the median of the per-round ratios (a
drift that slows one round slows both sides), and the spread is kept: the coefficient of
variation over rounds. A timing whose spread exceeds :data:`MAX_CV` is flagged unreliable
(metric ``throughput_reliable`` 0), and so is a ratio with an unreliable side. The ablation
runner times every distinct network once, in a process of its own that holds a whole node,
after every trial (:func:`measure_architectures`).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from .protocol import MAX_CV


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@dataclass
class Timing:
    """One network's images/s per round."""

    rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def cv(self) -> float:
        return statistics.pstdev(self.rates) / statistics.fmean(self.rates) if len(self.rates) > 1 else 0.0

    @property
    def reliable(self) -> bool:
        return len(self.rates) > 2 and self.cv <= MAX_CV


class _Timed:
    """A network ready to time: in eval mode on the device with its input, warmed up, and the
    number of batches that makes one repeat last ``min_seconds``."""

    def __init__(self, model: nn.Module, input_size: int, batch: int, device: torch.device, min_seconds: float):
        self.model = model.to(device).eval().float()
        self.x = torch.randn(batch, 3, input_size, input_size, device=device)
        self.device, self.batch = device, batch
        self.model(self.x)  # first call: allocations, cuDNN / oneDNN kernel choice
        once = self._seconds(1)
        self.calls = max(1, int(min_seconds / max(once, 1e-6)) + 1)

    def _seconds(self, calls: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(calls):
            self.model(self.x)
        _sync(self.device)
        return time.perf_counter() - t0

    def rate(self) -> float:
        return self.batch * self.calls / self._seconds(self.calls)


@torch.no_grad()
def time_interleaved(
    nets: dict[str, tuple[nn.Module, int]],
    batch_size: int = 64,
    device: str | torch.device = "auto",
    repeats: int = 5,
    min_seconds: float = 0.2,
) -> dict[str, Timing]:
    """Time every ``(model, input size)`` in ``repeats`` interleaved rounds."""
    dev = _device(device)
    timed = {k: _Timed(m, size, batch_size, dev, min_seconds) for k, (m, size) in nets.items()}
    for t in timed.values():  # a warm-up round, untimed
        t.rate()
    rates: dict[str, list[float]] = {k: [] for k in timed}
    for _ in range(repeats):
        for k, t in timed.items():
            rates[k].append(t.rate())
    return {k: Timing(v) for k, v in rates.items()}


def measure_throughput(
    model: nn.Module,
    input_size: int,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    repeats: int = 5,
    min_seconds: float = 0.2,
) -> dict[str, float | str]:
    """One network alone: median images/s, min / max over the repeats, their spread."""
    t = time_interleaved({"net": (model, input_size)}, batch_size, device, repeats, min_seconds)["net"]
    return {
        "images_per_s": t.median,
        "images_per_s_min": min(t.rates),
        "images_per_s_max": max(t.rates),
        "cv": t.cv,
        "device": str(_device(device)),
    }


def reference_model(model_cfg) -> dict:
    """ResNet-50 at the scale of ``model_cfg`` (width, block counts, stem) when that is a
    ResNet; a plain ResNet-50 otherwise."""
    if getattr(model_cfg, "arch", None) != "resnet":
        return {"name": "resnet50"}
    scale = {"width": model_cfg.width, "layers": model_cfg.layers, "small_input": model_cfg.small_input}
    return {"name": "resnet50", **scale}


def _metrics(own: Timing, base: Timing) -> dict[str, float]:
    """A row's throughput metrics; the ratio is the median of the per-round ratios."""
    ratios = [a / b for a, b in zip(own.rates, base.rates, strict=True)]
    return {
        "throughput": own.median,
        "throughput_min": min(own.rates),
        "throughput_max": max(own.rates),
        "throughput_cv": own.cv,
        "throughput_reliable": float(own.reliable),
        "throughput_r50": base.median,
        "throughput_r50_cv": base.cv,
        "throughput_ratio_r50": statistics.median(ratios),
        "throughput_ratio_reliable": float(own.reliable and base.reliable),
    }


def throughput_with_ratio(
    model: nn.Module,
    input_size: int,
    num_classes: int,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    repeats: int = 5,
    reference: dict | str = "resnet50",
) -> dict[str, float]:
    from ..models import build_model

    nets = {"own": (model, input_size), "r50": (build_model(reference, num_classes=num_classes), input_size)}
    t = time_interleaved(nets, batch_size, device, repeats)
    return _metrics(t["own"], t["r50"])


def measure_architectures(
    jobs: dict[str, tuple[dict | str, int, int]],
    reference: dict | str,
    reference_size: int,
    batch_size: int,
    repeats: int,
    device: str = "auto",
    threads: int | None = None,
) -> dict[str, dict[str, float]]:
    """Throughput metrics per job key; a job is (model spec, input size, classes). Each distinct
    inference network (``ModelConfig.inference_twin``: a row with DropBlock is the row without)
    is timed once, the reference ResNet-50 once per class count, all in interleaved rounds."""
    from ..models import build_model, resolve_config

    if threads:
        torch.set_num_threads(threads)

    def key(spec, size: int, classes: int) -> str:
        return json.dumps([resolve_config(spec).inference_twin().identity(), size, classes], sort_keys=True)

    nets: dict[str, tuple[nn.Module, int]] = {}
    for spec, size, classes in [(s, z, c) for s, z, c in jobs.values()] + [
        (reference, reference_size, c) for _, _, c in jobs.values()
    ]:
        k = key(spec, size, classes)
        if k not in nets:
            nets[k] = (build_model(resolve_config(spec).inference_twin(), classes), size)
    timings = time_interleaved(nets, batch_size, device, repeats)
    return {
        name: _metrics(timings[key(spec, size, classes)], timings[key(reference, reference_size, classes)])
        for name, (spec, size, classes) in jobs.items()
    }


def quantize_int8(model: nn.Module, input_size: int) -> nn.Module:
    """Post-training static int8 (torch's FX quantisation, x86 backend) calibrated on random inputs:
    enough for speed, which is all Table 9's second column measures."""
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    m = copy.deepcopy(model).cpu().eval()
    example = torch.randn(1, 3, input_size, input_size)
    prepared = prepare_fx(m, get_default_qconfig_mapping("x86"), (example,))
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(2, 3, input_size, input_size))
    return convert_fx(prepared)


def quantized_cpu_throughput(model: nn.Module, input_size: int, repeats: int = 20) -> float:
    """Int8 images/s at batch 1 on one CPU thread (Table 9's second column)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        q = quantize_int8(model, input_size)
        return float(measure_throughput(q, input_size, 1, "cpu", repeats=repeats)["images_per_s"])
    finally:
        torch.set_num_threads(threads)
