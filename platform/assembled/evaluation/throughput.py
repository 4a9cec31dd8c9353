"""Inference throughput as the paper measures it: images/s, batch 64, FP32, eval mode, after
warm-up, with device synchronisation, median of repeats; and the ratio to a ResNet-50 timed
in the same process right before, the figure that compares across machines."""

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
    return {"images_per_s": batch_size / statistics.median(times), "device": str(device)}


def throughput_with_ratio(
    model: nn.Module,
    input_size: int,
    num_classes: int,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    repeats: int = 5,
) -> dict[str, float]:
    from ..models import build_model

    r50 = build_model("resnet50", num_classes=num_classes)
    base = measure_throughput(r50, input_size, batch_size, device, repeats=repeats)["images_per_s"]
    del r50
    own = measure_throughput(model, input_size, batch_size, device, repeats=repeats)["images_per_s"]
    return {"throughput": own, "throughput_r50": base, "throughput_ratio_r50": own / base}


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
