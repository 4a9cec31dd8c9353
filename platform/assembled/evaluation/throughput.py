"""Inference throughput as the paper measures it: images/s, batch 64, FP32, eval mode, after
warm-up, with device synchronisation, median (and min / max) of repeats; and the ratio to a
ResNet-50 of the same scale timed in the same process, the figure that compares across
machines (a row's own R50 baseline reads 1.00 everywhere).

Timings mean something only when nothing else runs on the device: the ablation runner measures
every distinct architecture once, in one task that holds a whole node after training
(:func:`measure_architectures`), never inside a trial that shares its cores.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_throughput(
    model: nn.Module,
    input_size: int,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    warmup: int = 2,
    repeats: int = 5,
) -> dict[str, float | str]:
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    model = model.to(device).eval().float()
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    for _ in range(warmup):
        model(x)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {
        "images_per_s": batch_size / statistics.median(times),
        "images_per_s_min": batch_size / max(times),
        "images_per_s_max": batch_size / min(times),
        "device": str(device),
    }


def reference_model(model_cfg) -> dict:
    """ResNet-50 at the scale of ``model_cfg`` (width, block counts, stem) when that is a
    ResNet; a plain ResNet-50 otherwise."""
    if getattr(model_cfg, "arch", None) != "resnet":
        return {"name": "resnet50"}
    scale = {"width": model_cfg.width, "layers": model_cfg.layers, "small_input": model_cfg.small_input}
    return {"name": "resnet50", **scale}


def _metrics(own: dict, base: dict) -> dict[str, float]:
    return {
        "throughput": own["images_per_s"],
        "throughput_min": own["images_per_s_min"],
        "throughput_max": own["images_per_s_max"],
        "throughput_r50": base["images_per_s"],
        "throughput_ratio_r50": own["images_per_s"] / base["images_per_s"],
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

    r50 = build_model(reference, num_classes=num_classes)
    base = measure_throughput(r50, input_size, batch_size, device, repeats=repeats)
    del r50
    own = measure_throughput(model, input_size, batch_size, device, repeats=repeats)
    return _metrics(own, base)


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
    is timed once, the reference ResNet-50 once per class count, in this process."""
    import json

    from ..models import build_model, resolve_config

    if threads:
        torch.set_num_threads(threads)
    timed: dict[str, dict] = {}

    def timing(spec, size: int, classes: int) -> dict:
        net = resolve_config(spec).inference_twin()
        key = json.dumps([net.model_dump(mode="json"), size, classes], sort_keys=True)
        if key not in timed:
            timed[key] = measure_throughput(build_model(net, classes), size, batch_size, device, repeats=repeats)
        return timed[key]

    out = {}
    for name, (spec, size, classes) in jobs.items():
        base = timing(reference, reference_size, classes)
        out[name] = _metrics(timing(spec, size, classes), base)
    return out


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
        return float(measure_throughput(q, input_size, 1, "cpu", warmup=2, repeats=repeats)["images_per_s"])
    finally:
        torch.set_num_threads(threads)
