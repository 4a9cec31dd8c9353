"""Data-parallel training without knowing who launched it: when a torch.distributed process group
exists (Ray Train's TorchTrainer, torchrun), the trainer shards each global batch across ranks,
wraps the model in DDP, averages what it reports, and lets rank 0 alone write checkpoints.

Each rank draws the same global order of images (one generator, the same seed everywhere) and
takes every world-th of them, so shards never overlap and a global batch holds the images a
single process would have drawn. Gradients are averaged by DDP, which for equal shards equals
the gradient of the mean loss over the global batch: the learning rate is the global batch's.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over the ranks (itself outside a process group)."""
    _, size = world()
    if size == 1:
        return value
    out = value.detach().clone().float()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / size


def average_buffers(model: torch.nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) over the ranks, so every rank
    evaluates the same model and the statistics see every shard (DDP keeps parameters equal,
    not the running statistics each rank's last forward left)."""
    _, size = world()
    if size == 1:
        return
    for buf in unwrap(model).buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(size)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around the model in a process group; the model itself otherwise."""
    if world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)
