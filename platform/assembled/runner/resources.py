"""What a trial gets: the profile's request (``Resources``), fitted to the nodes the executor
has, and the torch threads that follow from it. Torch-free, as profiles and plans use it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config_io import ConfigError

# a Tune trial that only drives a TorchTrainer: no CPU (Tune refuses an empty request: 256 MB memory)
DRIVER_ONLY = {"CPU": 0.0, "memory": float(2**28)}


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(1, description="CPUs per trial (per worker when workers > 1)")
    gpu: float = Field(0, description="GPUs per trial (per worker) when the cluster has them")
    threads: int | None = Field(None, description="torch threads per CPU trial (default: its CPUs)")
    workers: int = Field(
        1, ge=1, description="data-parallel workers per trial (Ray Train DDP: gloo on CPU, NCCL on GPU)"
    )
    sync_bn: bool = Field(False, description="with workers > 1: BatchNorm over the global batch (SyncBN)")

    @model_validator(mode="after")
    def _sync_bn_on_gpus(self) -> Resources:
        if self.sync_bn and self.gpu <= 0:
            raise ValueError("sync_bn needs GPU workers (torch's SyncBatchNorm runs on GPUs only): set gpu")
        return self


def fit_resources(
    profile: str, request: Resources, nodes: list[dict[str, float]], started_here: bool
) -> tuple[dict[str, float], str | None]:
    """A trial's Ray resources, and a note when they were fitted to this machine.

    A request no node can meet would wait for ever; a local Ray this command started is fitted to
    the machine (with a note), anything else is an error naming the profile, the request and the
    nodes. A profile that asks for GPUs trains on GPUs or not at all: its runs' identity says CUDA
    (``TrainConfig.compute``), so a CPU run under it would be recorded as what it is not.
    """
    need = {"CPU": float(request.cpu), **({"GPU": float(request.gpu)} if request.gpu > 0 else {})}
    if request.gpu > 0 and not any(n.get("GPU", 0) > 0 for n in nodes):
        where = "this machine has" if started_here else "the cluster has"
        raise ConfigError(
            f"profile {profile} trains on GPUs ({fmt(need)} per trial; its runs are recorded as CUDA runs): "
            f"{where} none; use a CPU profile (cifar-cpu, cpu) or a cluster with GPU nodes (--address)"
        )
    if request.workers > 1:
        return _fit_workers(profile, request.workers, need, nodes, started_here)
    if any(all(n.get(k, 0) >= v for k, v in need.items()) for n in nodes):
        return need, None
    largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    have = {k: largest.get(k, 0) for k in need}
    if not started_here:
        raise ConfigError(
            f"profile {profile}: a trial asks for {fmt(need)}, but the largest node of the cluster has "
            f"{fmt(have)}; lower 'resources' in profiles.yaml or add a larger node"
        )
    fitted = {k: min(v, have[k]) for k, v in need.items() if have[k] > 0}
    if "GPU" not in fitted and fitted.get("CPU", 0) > 1:
        # more one-thread trials, not fewer multi-thread ones: small convolutions do not split well
        # over threads (benchmarks/threads.py on 2 idle cores: two one-thread trials trained 252
        # img/s together, one two-thread trial 203: 1.25x; on a loaded box the issue saw 15-30x)
        fitted["CPU"] = 1.0
    note = (
        f"profile {profile} asks for {fmt(need)} per trial; this machine has {fmt(have)}: each trial gets {fmt(fitted)}"
    )
    if "GPU" not in fitted and have.get("CPU", 0) >= 2:
        note += f" ({int(have['CPU'])} one-thread trials at once: faster here than fewer multi-thread ones)"
    return fitted, note


def _fit_workers(
    profile: str, workers: int, need: dict[str, float], nodes: list[dict[str, float]], started_here: bool
) -> tuple[dict[str, float], str | None]:
    """Each data-parallel worker's resources: the request, when the cluster holds ``workers`` of
    them at once; on a local Ray this command started, the machine shared evenly (with a note)."""
    total = {k: sum(n.get(k, 0) for n in nodes) for k in need}
    if all(total[k] >= v * workers for k, v in need.items()):
        return need, None
    if not started_here:
        raise ConfigError(
            f"profile {profile}: a trial asks for {workers} workers of {fmt(need)}, but the cluster has "
            f"{fmt(total)} in all; lower 'resources' in profiles.yaml or add nodes"
        )
    fitted = {k: min(v, total[k] / workers) for k, v in need.items() if total[k] > 0}
    note = (
        f"profile {profile} asks for {workers} workers of {fmt(need)} per trial; this machine has "
        f"{fmt(total)}: each worker gets {fmt(fitted)}"
    )
    return fitted, note


def trial_threads(request: Resources, fitted: dict[str, float]) -> int:
    """torch threads of a trial: the profile's, else the CPUs it was given."""
    return max(1, int(request.threads or fitted.get("CPU", 1)))


def fmt(res: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in res.items()) or "nothing"


def this_machine() -> dict[str, float]:
    """This machine as a node: its CPUs, and its GPUs (torch, seconds to import, only where a GPU
    driver is loaded: a CPU box answers at once)."""
    here = {"CPU": float(os.cpu_count() or 1)}
    if Path("/proc/driver/nvidia").exists() or Path("/dev/kfd").exists() or shutil.which("nvidia-smi"):
        import torch

        if gpus := torch.cuda.device_count():
            here["GPU"] = float(gpus)
    return here
