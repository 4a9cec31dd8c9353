"""The GPU suite's own steps (benchmarks/gpu_suite.py runs each in a process of its own):

    python benchmarks/gpu_steps.py env                     versions, device, a bf16 matmul figure
    python benchmarks/gpu_steps.py cifar --data D [...]    a short real CIFAR-10 training: top-1 per epoch, img/s
    python benchmarks/gpu_steps.py syncs --data D [--kd]   host syncs per training step (CUDA only)

Each prints ``key: value`` lines the suite gathers into its table (and files under its output).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from assembled.training import TrainConfig, Trainer, resolve_device  # noqa: E402


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def env(args: argparse.Namespace) -> None:
    import torchvision

    dev = resolve_device("auto")
    print(f"python: {platform.python_version()}")
    print(f"torch: {torch.__version__} (CUDA {torch.version.cuda})")
    print(f"torchvision: {torchvision.__version__}")
    try:
        import timm

        print(f"timm: {timm.__version__}")
    except ImportError:
        print("timm: not installed")
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}")
    n = args.matmul or (8192 if dev.type == "cuda" else 512)
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(dev)
    reps = 20 if dev.type == "cuda" else 3
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(dev)
    tflops = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12
    print(f"bf16 matmul {n}x{n}: {tflops:.1f} TFLOP/s")


def _cifar_config(args: argparse.Namespace, dev: torch.device) -> TrainConfig:
    """ResNet-50 with a CIFAR stem on the shipped CIFAR-10, its data held on the device."""
    return TrainConfig.model_validate(
        {
            "model": {"name": "resnet50", "width": args.width, "small_input": True},
            "data": {"kind": "folder", "path": args.data, "pipeline": "device", "image_size": 32,
                     "min_crop_scale": 0.35, "limit_per_class": args.per_class,
                     "val_limit_per_class": args.val_per_class},
            "optim": {"epochs": args.epochs, "batch_size": args.batch, "base_lr": 0.4, "warmup_epochs": 0.5},
            "device": str(dev),
            "channels_last": True,
        }
    )  # fmt: skip


def cifar(args: argparse.Namespace) -> None:
    dev = resolve_device("auto")
    cfg = _cifar_config(args, dev)
    trainer = Trainer(cfg, tempfile.mkdtemp(), progress=False)
    t0 = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - t0
    for i, h in enumerate(result.history, 1):
        print(f"epoch {i}: top1 {h.get('top1', float('nan')):.2f}  train {h.get('train_images_per_s', 0):.0f} img/s")
    print(f"cifar top1: {result.history[-1].get('top1', float('nan')):.2f}")
    print(f"cifar train img/s (last epoch): {result.history[-1].get('train_images_per_s', 0):.0f}")
    how = trainer.inference
    print(f"cifar wall: {wall:.1f} s, {args.epochs} epoch(s), amp={how.amp} channels_last={how.channels_last}")
    if dev.type == "cuda":
        print(f"cifar peak memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def syncs(args: argparse.Namespace) -> None:
    """Host syncs in one training epoch (CUDA). On a CPU the same training runs, uncounted: the
    code path stays exercised where no GPU is."""
    dev = resolve_device("auto")
    args.epochs = 1
    cfg = _cifar_config(args, dev)
    work = tempfile.mkdtemp()
    if args.kd:  # a teacher's logits for every training image (random: the cost is the same)
        logits = Path(work) / "teacher.pt"
        torch.save(torch.randn((args.per_class or 5000) * 10, 10), logits)
        reg = cfg.reg.model_copy(update={"kd_temperature": 1.0, "teacher_logits": str(logits)})
        cfg = cfg.model_copy(update={"reg": reg})
    trainer = Trainer(cfg, work, progress=False)
    kind = " with KD" if args.kd else ""
    if dev.type != "cuda":
        result = trainer.fit()
        print(f"syncs{kind}: skipped (no CUDA device: torch.cuda.set_sync_debug_mode counts CUDA syncs only)")
        print(f"syncs top1 (trained uncounted): {result.history[-1].get('top1', float('nan')):.2f}")
        return
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = trainer.fit()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    hits = [w for w in seen if "synchroniz" in str(w.message)]
    steps = max(1, (args.per_class or 5000) * 10 // args.batch)
    where: dict[str, int] = {}
    for w in hits:
        key = f"{Path(w.filename).name}:{w.lineno}"
        where[key] = where.get(key, 0) + 1
    print(f"syncs{kind}: {len(hits)} in one epoch of {steps} steps and its evaluation ({len(hits) / steps:.2f} a step)")
    for key, count in sorted(where.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {count:6d}  {key}")
    print(f"syncs top1: {result.history[-1].get('top1', float('nan')):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["env", "cifar", "syncs"])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--per-class", type=int, default=None, help="train images per class (default: all 5000)")
    p.add_argument("--val-per-class", type=int, default=None, help="test images per class (default: all 1000)")
    p.add_argument("--kd", action="store_true", help="syncs: with knowledge distillation (a teacher table)")
    p.add_argument("--matmul", type=int, default=None, help="matmul size (default 8192 on a GPU, 512 on CPU)")
    args = p.parse_args()
    {"env": env, "cifar": cifar, "syncs": syncs}[args.step](args)


if __name__ == "__main__":
    main()
