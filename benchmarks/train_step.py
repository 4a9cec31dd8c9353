"""Trainer overhead: training images/s of the shared Trainer beside a bare
forward + backward + SGD step loop on the same model, batch, data and device, in one process.

    python benchmarks/train_step.py [--model resnet50d_sk] [--size 64] [--batch 64] [--steps 30]
                                    [--data ../shared/data/cifar10]

Prints both figures and their ratio (goal >= 0.9 on a GPU). The bare loop uses the same
channels_last / bf16 autocast choices as the trainer on that device.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from assembled.models import build_model  # noqa: E402
from assembled.training import TrainConfig, Trainer, resolve_device  # noqa: E402


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(cfg: TrainConfig, steps: int, dev: torch.device, amp: bool, cl: bool) -> float:
    model = build_model(cfg.model, num_classes=cfg.data.num_classes).to(dev)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    B, S = cfg.optim.batch_size, cfg.data.image_size
    x = torch.randn(B, 3, S, S, device=dev)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, cfg.data.num_classes, (B,), device=dev)
    model.train()
    for i in range(steps + 5):
        if i == 5:
            sync(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(dev)
    return steps * B / (time.perf_counter() - t0)


def pipeline_only(cfg: TrainConfig, steps: int, dev: torch.device) -> float:
    """Images/s of the training data alone, from the dataset through the trainer's loader to
    model inputs on the device: whether data or compute bounds a run."""
    from assembled.data import train_dataset
    from assembled.data.loaders import loader_for
    from assembled.data.transforms import to_model_input

    if cfg.data.pipeline == "device":
        from assembled.data.device_batches import DeviceBatches

        loader = DeviceBatches(train_dataset(cfg.data), cfg.data, dev, seed=0).epoch(0, cfg.optim.batch_size, steps + 3)
    else:
        loader = loader_for(train_dataset(cfg.data), cfg.optim.batch_size, True, cfg.data.num_workers)
    seen, t0 = 0, None
    for i, (x, _, _) in enumerate(loader):
        to_model_input(x, dev)
        if i == 2:
            sync(dev)
            t0, seen = time.perf_counter(), 0
        elif t0 is not None:
            seen += x.shape[0]
        if i >= steps + 2:
            break
    sync(dev)
    return seen / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="resnet50d_sk")
    p.add_argument("--width", type=int, default=None, help="override the model width (CPU: 16)")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--data", default=None, help="image folder held in memory (default: synthetic)")
    p.add_argument("--compile", default="none", choices=["none", "inductor", "eager"], help="TrainConfig.compile")
    args = p.parse_args()
    dev = resolve_device("auto")
    gpu = dev.type == "cuda"
    size = args.size or (224 if gpu else 64)
    batch = args.batch or (128 if gpu else 32)
    width = args.width or (64 if gpu else 16)
    workers = args.workers if args.workers is not None else (6 if gpu else 0)
    model = {"name": args.model, "width": width}
    # enough images for warm-up epoch + measured epoch of `steps` steps
    n = batch * args.steps
    if args.data:  # real images held on the device, cropped to `size` there: data from memory
        data = {"kind": "folder", "path": args.data, "pipeline": "device", "epoch_size": n, "image_size": size,
                "val_limit_per_class": max(1, batch // 10)}  # fmt: skip
    else:  # synthetic scenes rendered once on the CPU (slow at 224 px: ~9 img/s a core)
        data = {"train_size": n, "val_size": batch, "source_size": size, "image_size": size, "num_workers": workers}
    cfg = TrainConfig.model_validate(
        {
            "model": model,
            "data": data,
            "optim": {"epochs": 2, "batch_size": batch, "warmup_epochs": 0},
            "compile": args.compile,  # compiled in the first epoch; the second is timed
        }
    )
    trainer = Trainer(cfg, tempfile.mkdtemp(), progress=False)
    torch.manual_seed(0)
    result = trainer.fit()
    trainer_ips = result.history[-1]["train_images_per_s"]  # second epoch: warm
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else None
    bare_ips = bare_loop(cfg, args.steps, dev, trainer.inference.amp, trainer.inference.channels_last)
    name = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"device: {name}; model {args.model} width {width}; {size}px; batch {batch}; amp={trainer.inference.amp} "
        f"channels_last={trainer.inference.channels_last} compile={args.compile}"
    )
    print(f"trainer   : {trainer_ips:9.1f} images/s (includes data loading + augmentation)")
    print(f"bare loop : {bare_ips:9.1f} images/s (pre-made tensor batch)")
    pipe_ips = pipeline_only(cfg, args.steps, dev)
    path = "device batches" if cfg.data.pipeline == "device" else f"loader, {workers} workers"
    print(f"data only : {pipe_ips:9.1f} images/s ({path} -> normalised on the device)")
    print(f"ratio trainer/bare: {trainer_ips / bare_ips:.3f}")
    if peak is not None:
        print(f"peak memory (trainer): {peak:.2f} GiB")


if __name__ == "__main__":
    main()
