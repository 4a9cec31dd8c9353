"""The device data path (``data.pipeline: device``): a dataset held in memory as one uint8
tensor on the training device, cut into augmented batches there.

Why: per-image transforms in DataLoader workers feed ~150-200 images/s a core at 224 px and
~700 at 32 px, which starves a GPU and, on a small CPU, costs as much as the model. Here an
epoch is a few batched ops: a gather, the batched crop-resize and flip (batch_ops.py) and,
where asked, the batched AutoAugment.

Reproducible and resumable: the epoch's order is the DataLoader path's (the same sampler rule
and seed, so the same images in the same batches) and every per-sample random draw (crop box,
flip, sub-policy) comes from a CPU generator seeded by (seed, epoch, rank), so a resumed run
continues bitwise and a seed gives the same crops on a CPU and a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .autoaugment import autoaugment_batch
from .batch_ops import crop_params, resize_center_crop, resized_crop
from .config import DataConfig
from .in_memory import InMemoryImages
from .transforms import eval_resize

RATIO = (3 / 4, 4 / 3)


class BatchAugment:
    """The training preset on a whole batch: RandomResizedCrop (torchvision's rule), horizontal
    flip with probability 0.5, then AutoAugment when asked."""

    def __init__(self, size: int, min_scale: float, autoaugment: str | None = None) -> None:
        if autoaugment == "torchvision":
            raise ValueError("data.pipeline device: autoaugment_policy torchvision is per image; use official or good")
        self.size, self.scale, self.autoaugment = size, (min_scale, 1.0), autoaugment

    def __call__(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        top, left, ch, cw = crop_params(n, h, w, self.scale, RATIO, gen)
        out = resized_crop(images, top, left, ch, cw, self.size)
        flip = (torch.rand(n, generator=gen) < 0.5).to(out.device).view(-1, 1, 1, 1)
        out = torch.where(flip, out.flip(-1), out)
        if self.autoaugment:
            out = autoaugment_batch(out, "imagenet" if self.autoaugment == "official" else "good", gen)
        return out


def epoch_order(n: int, samples: int, seed: int) -> torch.Tensor:
    """The DataLoader path's order (``RandomSampler(num_samples=samples)`` with a generator
    seeded ``seed``): whole permutations, then the first part of one more."""
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randperm(n, generator=g) for _ in range(samples // n)]
    if samples % n:
        parts.append(torch.randperm(n, generator=g)[: samples % n])
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)


class DeviceBatches:
    """Training batches of an in-memory dataset, augmented on ``device``."""

    def __init__(self, dataset: InMemoryImages, cfg: DataConfig, device: torch.device, seed: int) -> None:
        if cfg.preprocessing != "imagenet":
            raise ValueError(f"data.pipeline device: preprocessing {cfg.preprocessing!r} runs per image (use loader)")
        policy = cfg.autoaugment_policy if cfg.autoaugment else None
        self.augment = BatchAugment(cfg.image_size, cfg.min_crop_scale, policy)
        self.images = dataset.images.to(device)
        self.targets = torch.as_tensor(dataset.targets).to(device)
        self.device, self.seed = device, seed

    def epoch(
        self, epoch: int, batch: int, steps: int, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``steps`` batches of ``batch`` images (the global batch: this rank keeps its share),
        as ``(uint8 images, labels, dataset indices)``."""
        rank, world = shard
        order = epoch_order(len(self.images), steps * batch, self.seed * 1000 + epoch)
        gen = torch.Generator().manual_seed(((self.seed * 1000 + epoch) * 1009 + rank) * 7 + 1)
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch][rank::world]
            rows = idx.to(self.device, non_blocking=True)
            yield self.augment(self.images[rows], gen), self.targets[rows], idx


class DeviceEval:
    """Evaluation batches of an in-memory dataset: the resize + centre crop of eval_transform,
    batched on ``device``; ``(uint8 crops, labels, indices)``."""

    def __init__(self, dataset: InMemoryImages, size: int, device: torch.device, batch: int = 500) -> None:
        self.images = dataset.images.to(device)
        self.targets = torch.as_tensor(dataset.targets).to(device)
        self.size, self.batch = size, batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.images), self.batch):
            x = resize_center_crop(self.images[start : start + self.batch], eval_resize(self.size), self.size)
            idx = torch.arange(start, start + x.shape[0])
            yield x, self.targets[start : start + x.shape[0]], idx

    def __len__(self) -> int:
        return (len(self.images) + self.batch - 1) // self.batch
