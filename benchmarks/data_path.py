"""Training-data throughput of the two input paths, side by side in one run, on real CIFAR-10
(the shipped JPEGs, or any ImageFolder root with same-size images), to model inputs on the device:

    python benchmarks/data_path.py [--data ../shared/data/cifar10] [--batch 64] [--steps 150]

- loader (files): per-image decode + RandomResizedCrop + flip in a DataLoader (the ``loader``
  pipeline reading image files), ``--workers`` processes;
- loader (cache): the same per-image transforms over the decoded uint8 cache;
- device: the decoded cache on the device, cropped and flipped in batches (``pipeline: device``);
- device + AutoAugment: the same with the official policy, batched.
Prints images/s and each path's ratio to the first. Nothing trains: this is the data alone.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from assembled.data import DataConfig, train_dataset  # noqa: E402
from assembled.data.device_batches import DeviceBatches  # noqa: E402
from assembled.data.loaders import loader_for  # noqa: E402
from assembled.data.sources import find_source  # noqa: E402
from assembled.data.transforms import to_model_input  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def rate(batches, steps: int, dev: torch.device) -> float:
    """Images/s over ``steps`` batches after two warm-up batches, through to normalised inputs."""
    seen, t0 = 0, None
    for i, (x, _, _) in enumerate(batches):
        to_model_input(x, dev)
        if i == 2:
            _sync(dev)
            t0 = time.perf_counter()
        elif i > 2:
            seen += x.shape[0]
        if i >= steps + 2:
            break
    _sync(dev)
    return seen / (time.perf_counter() - t0)


def folder_of_files(root: Path, tmp: Path) -> Path:
    """An ImageFolder of files for the per-file loader (archives are extracted once, here)."""
    source = find_source(root, "train")
    if not source.archive:
        return root
    with tarfile.open(source.path) as tar:
        tar.extractall(tmp, filter="data")
    return tmp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the loader paths")
    p.add_argument("--size", type=int, default=32)
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1 if dev.type == "cpu" else torch.get_num_threads())
    base = {"kind": "folder", "image_size": args.size, "min_crop_scale": 0.35, "num_workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        files = folder_of_files(Path(args.data), Path(tmp))
        figures = {}
        cfg = DataConfig(**base, path=str(files))
        loader = loader_for(train_dataset(cfg), args.batch, True, args.workers)
        figures["loader (files)"] = rate(loader, args.steps, dev)
        cfg = DataConfig(**base, path=args.data, cache=True)
        loader = loader_for(train_dataset(cfg), args.batch, True, args.workers)
        figures["loader (cache)"] = rate(loader, args.steps, dev)
        for aa in (False, True):
            cfg = DataConfig(**base, path=args.data, pipeline="device", autoaugment=aa)
            batches = DeviceBatches(train_dataset(cfg), cfg, dev, seed=0).epoch(0, args.batch, args.steps + 3)
            figures["device" + (" + AutoAugment" if aa else "")] = rate(batches, args.steps, dev)
    first = next(iter(figures.values()))
    where = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"{args.data}: {args.size} px, batch {args.batch}, {args.workers} loader workers, {where}")
    for name, ips in figures.items():
        print(f"  {name:24s} {ips:9.0f} images/s   {ips / first:6.2f}x")


if __name__ == "__main__":
    main()
