"""How batches leave a dataset: the DataLoader of the per-image path (shuffled, sharded across
data-parallel ranks, a fixed number of images an epoch) and the evaluation batches of either
path (the device path crops in-memory images in batches on the device)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from .config import DataConfig
from .datasets import val_dataset
from .device_batches import DeviceEval


class ShardSampler(Sampler[int]):
    """Every ``size``-th index of ``base`` starting at ``rank``: one rank's disjoint share of the
    order every rank draws identically."""

    def __init__(self, base: Sampler[int], rank: int, size: int) -> None:
        self.base, self.rank, self.size = base, rank, size

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.base):
            if i % self.size == self.rank:
                yield index

    def __len__(self) -> int:
        return (len(self.base) - self.rank + self.size - 1) // self.size


def loader_for(
    dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int = 0,
    passes: int = 1,
    shard: tuple[int, int] = (0, 1),
    epoch_size: int | None = None,
) -> DataLoader:
    """``shard`` (rank, world size): this rank's share of the order every rank draws alike;
    ``epoch_size``: images an epoch draws (a random subset when below the dataset's size)."""
    sampler = None
    if shuffle:
        g = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, num_samples=(epoch_size or len(dataset)) * passes, generator=g)
        if shard[1] > 1:
            sampler = ShardSampler(sampler, *shard)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def eval_batches(cfg: DataConfig, device: torch.device, batch_size: int = 128, workers: int = 0):
    """The evaluation set as batches of ``(images, labels, indices)``, as the trainer validates:
    uint8 crops cut on ``device`` for the device path, normalised crops from a DataLoader otherwise."""
    if cfg.pipeline == "device":
        return DeviceEval(val_dataset(cfg, raw=True), cfg.eval_crop, device)
    return loader_for(val_dataset(cfg), batch_size, False, workers)
