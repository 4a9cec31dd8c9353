"""Memory layout on a CPU: training images/s of the `cifar-cpu` profile's networks (full-depth
ResNets at 1/8 width, CIFAR stems, 32 px) in NCHW and in channels_last (NHWC), side by side in
one process, one thread (as a trial on a 2-core box runs). The profile turns channels_last on
where this prints a gain.

    python benchmarks/layout.py [--batch 64] [--steps 12] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from assembled.models import build_model  # noqa: E402

TABLE6 = {
    "R50": {"name": "resnet50"},
    "R50-D": {"name": "resnet50d"},
    "+SK": {"name": "resnet50d_sk"},
    "+BL": {"name": "resnet50d_sk_bl"},
    "+AA": {"name": "resnet50d_sk_bl", "aa_filter": 3, "aa_sconv": True},
}
SCALE = {"width": 8, "small_input": True, "sk_min_width": 4}


def images_per_s(spec: dict, channels_last: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model({**spec, **SCALE}, num_classes=10)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} thread(s), batch {args.batch}, 32 px, training images/s")
    print(f"{'row':6} {'NCHW':>8} {'NHWC':>8} {'ratio':>6}")
    for row, spec in TABLE6.items():
        nchw = images_per_s(spec, False, args.batch, args.steps)
        nhwc = images_per_s(spec, True, args.batch, args.steps)
        print(f"{row:6} {nchw:8.0f} {nhwc:8.0f} {nhwc / nchw:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
