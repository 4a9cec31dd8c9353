"""The one trial driver that ablations and searches share: start an executor and fit each
trial's resources to what it has, turn a row's config into a trial spec, run a stage, time the
finished networks' inference alone on a node, and say by which protocol. The ablation runner
decides which rows run (teachers first, rows that share runs); the search runner asks Optuna
for configs; both hand their trials to a :class:`Driver`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config_io import ConfigError
from ..evaluation.config import EvalConfig
from ..evaluation.protocol import MAX_CV
from ..training.config import TrainConfig
from .executor import Outcome, RayExecutor, join_uri
from .progress import Tally
from .resources import DRIVER_ONLY, Resources, fit_resources, this_machine, trial_threads
from .trial import TrialSpec


class Executor(Protocol):
    """Where trials run: a Ray cluster (:class:`RayExecutor`) or this process (``LocalExecutor``)."""

    storage: str
    connected: bool
    local: bool
    on_this_machine: bool  # its trials run here (a local Ray it starts, or this process)

    def start(self) -> None: ...
    def nodes(self) -> list[dict[str, float]]: ...
    def run_stage(
        self, specs: list[TrialSpec], resources: dict[str, float], max_failures: int, name: str, tally: Tally | None
    ) -> dict[str, Outcome]: ...
    def measure_throughput(
        self, jobs: dict, reference: dict, reference_size: int, batch: int, repeats: int, gpu: bool
    ) -> dict[str, dict[str, float]]: ...
    def teacher_logits(self, uri: str, teacher_run: str, student: TrainConfig) -> bool: ...
    def stop(self) -> None: ...


def make_executor(
    kind: str, address: str | None, workdir: Path, name: str, profile: str, request: Resources
) -> Executor:
    """``kind``: "ray" (a local Ray, or the cluster at ``address``) or "local" (trials one after
    another in this process, no Ray). Where the trials would run on this machine, a profile it
    cannot serve (a GPU profile without a GPU) fails here: before Ray starts or a run is recorded."""
    if kind == "local":
        if address:
            raise ConfigError("--executor local runs trials in this process: it takes no --address")
        from .local_executor import LocalExecutor

        ex: Executor = LocalExecutor(workdir)
    else:
        ex = RayExecutor(address, workdir / "ray", name)
    if ex.on_this_machine:
        fit_resources(profile, request, [this_machine()], True)
    return ex


@dataclass(frozen=True)
class Settings:
    """What every trial of one invocation shares (from its profile)."""

    profile: str
    request: Resources
    max_failures: int
    eval_cfg: EvalConfig
    resnet: dict  # the profile's ResNet overrides: throughput ratios divide by a ResNet-50 of this scale
    reference_size: int

    @property
    def reference(self) -> dict:
        return {"name": "resnet50", **self.resnet}


class Driver:
    def __init__(self, executor: Executor, settings: Settings, uri: str, experiment_id: str) -> None:
        self.executor, self.settings = executor, settings
        self.uri, self.experiment_id = uri, experiment_id
        self.resources: dict[str, float] = {}

    def start(self) -> str | None:
        """Start (or join) the executor; fit a trial's resources to its nodes. The note says how,
        when they were fitted to this machine (it is printed here too)."""
        self.executor.start()
        s = self.settings
        self.resources, note = fit_resources(s.profile, s.request, self.executor.nodes(), self.executor.local)
        if note:
            print(note)
        return note

    @property
    def gpu(self) -> bool:
        return "GPU" in self.resources

    @property
    def trial_resources(self) -> dict[str, float]:
        """What a trial reserves: its resources, or for a data-parallel trial only a driver's
        memory (its Ray Train workers reserve their own CPUs / GPUs)."""
        return DRIVER_ONLY if self.settings.request.workers > 1 else self.resources

    def spec(self, row: str, run_id: str, cfg: TrainConfig, workdir: Path, **links: object) -> TrialSpec:
        """The trial of one config logging into ``run_id``; ``links``: its teacher, backbone or
        training run, or its pruning link."""
        request = self.settings.request
        return TrialSpec(
            row=row,
            run_id=run_id,
            experiment_id=self.experiment_id,
            uri=self.uri,
            cfg=cfg,
            eval_cfg=self.settings.eval_cfg,
            workdir=str(workdir.resolve()),
            gpu=self.gpu,
            threads=trial_threads(request, self.resources),
            workers=request.workers,
            worker_resources=self.resources,
            storage=join_uri(self.executor.storage, "train"),
            **links,  # type: ignore[arg-type]
        )

    def run_stage(self, specs: list[TrialSpec], name: str, tally: Tally | None) -> dict[str, Outcome]:
        return self.executor.run_stage(specs, self.trial_resources, self.settings.max_failures, name, tally)

    def teacher_logits(self, teacher_run: str, student: TrainConfig) -> bool:
        return self.executor.teacher_logits(self.uri, teacher_run, student)

    @property
    def protocol(self) -> str:
        """What a stored timing was measured by (tag ``throughput_protocol``): a run timed by
        another protocol is timed again."""
        ev, s = self.settings.eval_cfg, self.settings
        return (
            f"batch {ev.throughput_batch}, FP32, median of {ev.throughput_repeats} interleaved rounds (each >= 0.2 s) "
            f"after warm-up, in a process of its own holding a node after training, once per inference network "
            f"(DropBlock off); ratio = median of per-round ratios to ResNet-50 {s.resnet or ''} "
            f"at {s.reference_size}px; "
            f"unreliable when the rounds' CV > {MAX_CV:.0%}"
        )

    def time(self, jobs: dict[str, tuple], names: dict[str, str]) -> dict[str, dict[str, float]]:
        """Throughput of each job (run id -> (model, eval crop, classes)), timed in a process of
        its own on a node (after :meth:`start`); ``names`` (run id -> row or trial) name the
        unsteady ones."""
        ev, s = self.settings.eval_cfg, self.settings
        where = "GPU" if self.gpu else "all CPUs"
        print(f"timing inference of {len(jobs)} run(s) in a process of its own on a node ({where})")
        figures = self.executor.measure_throughput(
            jobs, s.reference, s.reference_size, ev.throughput_batch, ev.throughput_repeats, self.gpu
        )
        shaky = sorted(names[k] for k, m in figures.items() if not m["throughput_ratio_reliable"])
        if shaky:
            print(
                f"throughput of {', '.join(shaky)} is unreliable (its rounds or the R50's varied more than "
                f"{MAX_CV:.0%}): no ratio to R50 is shown for it; time it again on an idle machine (--retime)"
            )
        return figures

    def stop(self) -> None:
        self.executor.stop()
