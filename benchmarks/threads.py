"""More one-thread trials or fewer multi-thread ones? Trains the same model both ways on this
machine, side by side in one run, and prints the images/s of each layout.

    python benchmarks/threads.py [--seconds 30] [--model resnet50] [--width 8]

Layout A: as many processes as cores, one torch thread each (what the ablation runner fits a
CPU-only local Ray to). Layout B: one process with every core as torch threads. Each process
trains the profile-sized network on random 32-px batches for ``--seconds``; the figure is the
images/s of all processes together.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def _train(model: str, width: int, threads: int, seconds: float, batch: int, out) -> None:
    import torch
    import torch.nn.functional as F

    from assembled.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model({"name": model, "width": width, "small_input": True, "sk_min_width": max(1, width // 2)}, 10)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    out.put(n / (time.perf_counter() - t0))


def layout(processes: int, threads: int, args) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_train, args=(args.model, args.width, threads, args.seconds, args.batch, q))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    rates = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    many = layout(cores, 1, args)
    one = layout(1, cores, args)
    print(f"{args.model} width {args.width}, batch {args.batch}, 32 px, {cores} cores, {args.seconds:g} s each")
    print(f"  {cores} processes x 1 thread : {many:7.1f} img/s")
    print(f"  1 process x {cores} threads : {one:7.1f} img/s")
    print(f"  ratio (one-thread layout / multi-thread layout): {many / one:.2f}x")


if __name__ == "__main__":
    main()
