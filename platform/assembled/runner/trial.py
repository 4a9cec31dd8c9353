"""One row of a table as a Ray Tune function trainable: a plain function of a config dict.

The driver has already created (or found) the row's MLflow run and passes its id in a typed
:class:`TrialSpec`, so a retried trial continues its own run and no run id is kept on disk.
The checkpoint lives in a folder keyed by that run id: a row never resumes a checkpoint of a
run in another store. A Python error inside a trial is deterministic (bad data, a diverged
loss, a bug), so it ends the run FAILED with its reason and returns normally: Ray does not
retry it and the other trials go on. Ray retries only what retrying can fix: a worker that
died (killed, out of memory, lost node) and network errors reaching the tracking server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..evaluation.config import EvalConfig
from ..tracking.health import failure_reason
from ..training import TrainConfig

FAIL_ONCE_ENV = "ASSEMBLED_FAIL_ONCE_AT_EPOCH"  # test hook: the worker process dies once at that epoch
SCRATCH_ENV = "ASSEMBLED_SCRATCH"  # a node's own work folder (set on cluster nodes; see _workdir)
RETRYABLE = (ConnectionError, TimeoutError)


class PruneHandle(Protocol):
    def report(self, value: float, step: int) -> None: ...
    def should_prune(self) -> bool: ...


class Pruning(Protocol):
    """A searched trial's link to whatever may stop it early (an Optuna study: ``search``
    implements it). It travels with the spec to the worker, so it must pickle; ``open`` runs
    there. The runner never imports the search that made it."""

    def open(self) -> PruneHandle: ...


@dataclass(frozen=True)
class TrialSpec:
    row: str
    run_id: str
    experiment_id: str
    uri: str
    cfg: TrainConfig
    eval_cfg: EvalConfig
    workdir: str
    gpu: bool
    threads: int
    prune: Pruning | None = None  # a searched trial that may be stopped early
    teacher_run: str | None = None  # KD: the teacher's run, whose logits artifact the trial fetches
    backbone_run: str | None = None  # transfer: the backbone's run, whose checkpoint the trial fine-tunes
    trained_run: str | None = None  # evaluation only: the run that trained these very weights
    workers: int = 1  # > 1: data-parallel over this many Ray Train workers (DDP)
    storage: str | None = None  # where Ray Train keeps a data-parallel run's state (Tune's storage)
    worker_resources: dict[str, float] | None = None  # each worker's CPU / GPU


class _Report:
    """Forward each epoch to Tune (the driver prints the live line); ``report`` is Tune's, or Ray
    Train's in a data-parallel worker (every rank reports, Train forwards rank 0's)."""

    def __init__(self, row: str, epochs: int, report: Callable[[dict], None], spec: TrialSpec | None = None) -> None:
        self.row, self.epochs, self.report, self.spec = row, epochs, report, spec

    def on_progress(self, info: dict[str, float]) -> None:
        """Inside a long epoch: step, pace and time left (the trainer says at most every 30 s)."""
        self.report({"row": self.row, "phase": "train", **info})

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint: Path) -> None:
        self.report({"row": self.row, "epoch": epoch + 1, "epochs": self.epochs, **metrics})
        fail_at = os.environ.get(FAIL_ONCE_ENV, "")  # "EPOCH" or "ROW:EPOCH"
        row, _, at = fail_at.rpartition(":")
        if at and int(at) == epoch + 1 and self.spec is not None and row in ("", self.row):
            _die_once(self.spec)


def _die_once(spec: TrialSpec) -> None:
    """The test hook: the worker process dies, once per run (remembered by the run itself, so a
    retry on another node does not die again)."""
    from ..tracking import trial_run

    if not trial_run.has_tag(spec.uri, spec.run_id, "fault_injected"):
        trial_run.set_tag(spec.uri, spec.run_id, "fault_injected", "1")
        os._exit(3)


class _EvalProgress:
    """Forward evaluation progress to Tune, at most every ``every`` seconds (the mCE and mFR
    passes of a large profile take many minutes with nothing else to say)."""

    def __init__(self, row: str, report: Callable[[dict], None], every: float = 10.0) -> None:
        import time

        self.row, self.report, self.every, self.last = row, report, every, time.monotonic()

    def __call__(self, phase: str, fraction: float) -> None:
        import time

        now = time.monotonic()
        if now - self.last >= self.every or fraction >= 1:
            self.last = now
            self.report({"row": self.row, "phase": phase, "progress": fraction})


def _start(spec: TrialSpec) -> None:
    """RUNNING, without the failure reason of an earlier attempt of this run."""
    import time

    from ..tracking import trial_run

    tags = {
        "trial_started": str(int(time.time() * 1000)),  # when it left the queue: what `plan` estimates from
        "code_path": str(Path(__file__).resolve().parents[1]),  # which install of the platform ran it
    }
    if spec.workers > 1:
        tags["data_parallel_workers"] = str(spec.workers)
    node = _ray_node()
    if node:
        tags["ray.node"] = node
    trial_run.mark_started(spec.uri, spec.run_id, tags)


def _ray_node() -> str | None:
    """The Ray node running this trial; None outside Ray (``--executor local``, tests). Asking an
    uninitialised Ray for its runtime context would start a whole local Ray to answer."""
    try:
        import ray
    except ImportError:
        return None
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _pruned(spec: TrialSpec, reason: str) -> None:
    from ..tracking import trial_run

    trial_run.set_tag(spec.uri, spec.run_id, "optuna.state", "PRUNED")


def _fetch_checkpoint(spec: TrialSpec, workdir: Path) -> None:
    """The run's newest checkpoint into this node's work folder: a trial retried on another node,
    or resumed by a later invocation elsewhere, continues from the checkpoint stored with its run
    (tag ``checkpoint_epoch``) when it is newer than any local one."""
    import torch

    from ..tracking import trial_run
    from ..training.checkpoint import LAST

    stored = trial_run.stored_checkpoint_epoch(spec.uri, spec.run_id)
    local = workdir / LAST
    if local.exists():
        if stored is None:
            return
        state = torch.load(local, map_location="cpu", weights_only=True)
        if int(state.get("epoch", -1)) + 1 >= stored:
            return
    got = trial_run.download_checkpoint(spec.uri, spec.run_id, LAST, workdir)
    if got is not None:
        got.replace(local)


def _workdir(spec: TrialSpec) -> Path:
    """This node's work folder for the run: under ``ASSEMBLED_SCRATCH`` when the node sets it (a
    cluster: nothing is read from the driver's disk), else the driver's ``runs/`` path (one machine)."""
    scratch = os.environ.get(SCRATCH_ENV)
    path = Path(spec.workdir)
    workdir = Path(scratch) / Path(*path.parts[-3:]) if scratch else path
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _prepare(spec: TrialSpec, rank: int) -> tuple[TrainConfig, Path]:
    """The trial's config (with its teacher's logits, fetched from the teacher's run) and work
    folder (with the run's newest checkpoint). Rank 0 also marks the run RUNNING; in a
    data-parallel run the other ranks wait for it, then fetch what their node lacks."""
    from ..training.checkpoint import LAST
    from ..training.distributed import world

    workdir = _workdir(spec)
    if rank == 0:
        _start(spec)
        _fetch_checkpoint(spec, workdir)
    if world()[1] > 1:
        import torch.distributed as dist

        dist.barrier()
        if rank > 0 and not (workdir / LAST).exists():  # another node than rank 0's
            _fetch_checkpoint(spec, workdir)
    cfg = spec.cfg.model_copy(update={"threads": spec.threads})
    if spec.teacher_run:
        from .teachers import ensure_logits

        logits, _ = ensure_logits(spec.uri, spec.teacher_run, cfg, workdir.parent / "teacher_logits")
        cfg = cfg.model_copy(update={"reg": cfg.reg.model_copy(update={"teacher_logits": str(logits)})})
    if spec.backbone_run and cfg.transfer is not None:
        from ..tracking import trial_run

        # the run it fine-tunes (tag backbone_hash, set with the run, is that run's config hash)
        trial_run.set_tag(spec.uri, spec.run_id, "backbone_run", spec.backbone_run)
        weights = trial_run.download_final(spec.uri, spec.backbone_run, workdir.parent / "backbones")
        cfg = cfg.model_copy(update={"transfer": cfg.transfer.model_copy(update={"checkpoint": str(weights)})})
    return cfg, workdir


class _Prune:
    """Report each epoch's validation top-1 to the trial's Optuna study and stop training when
    the pruner says so (not after the last epoch: only the evaluation would be saved)."""

    def __init__(self, link: Pruning, epochs: int) -> None:
        self.trial, self.epochs = link.open(), epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint: Path) -> None:
        from ..training.stop import Stopped

        if "top1" not in metrics:
            return
        self.trial.report(metrics["top1"], epoch + 1)
        if epoch + 1 < self.epochs and self.trial.should_prune():
            raise Stopped(f"pruned by Optuna after epoch {epoch + 1}: validation top-1 {metrics['top1']:.2f}")


def run_trial(config: dict) -> None:
    """The Tune trial of a row: trains in this process, or drives a data-parallel Ray Train run."""
    spec: TrialSpec = config["trial"]
    if not spec.gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU trials on GPU machines must not grab a GPU
    if spec.workers > 1 and not spec.trained_run:  # an evaluation alone needs one process
        _run_data_parallel(spec)
        return
    from ray import tune

    _train(spec, tune.report, live=True)


def _train(spec: TrialSpec, report: Callable[[dict], None], live: bool) -> None:
    """Train, evaluate and track the row (rank 0 of a data-parallel run: ``live`` False, no
    evaluation progress and no pruning, which would leave the other ranks waiting)."""
    from ..evaluation.suite import suite_after_training
    from ..tracking import TrackedRun, train_tracked
    from ..training.stop import Stopped

    run = TrackedRun(spec.run_id, spec.experiment_id, spec.uri)
    try:
        cfg, workdir = _prepare(spec, 0)
    except RETRYABLE:
        raise
    except Exception as e:  # e.g. teacher logits that cannot be read
        report({"row": spec.row, "failed": 1, "reason": f"{type(e).__name__}: {e}"[:500], "run_id": run.run_id})
        return
    progress = _EvalProgress(spec.row, report) if live else None
    after = suite_after_training(cfg, eval_cfg=spec.eval_cfg, throughput=False, on_progress=progress)
    if spec.trained_run:
        _evaluate_only(spec, cfg, run, workdir, after, report)
        return
    callbacks: list = [_Report(spec.row, cfg.optim.epochs, report, spec)]
    if spec.prune is not None and live:
        callbacks.append(_Prune(spec.prune, cfg.optim.epochs))
    try:
        result = train_tracked(cfg, run, workdir, callbacks, after, progress=False, checkpoint_every_epoch=True)
    except RETRYABLE:
        raise
    except Stopped as e:
        _pruned(spec, str(e))
        report({"row": spec.row, "pruned": 1, "reason": str(e), "run_id": run.run_id})
        return
    except Exception as e:
        reason = failure_reason(e, workdir)[:500]
        report({"row": spec.row, "failed": 1, "reason": reason, "run_id": run.run_id})
        return
    report({"row": spec.row, "finished": 1, "run_id": run.run_id, **result.metrics})


def _evaluate_only(spec: TrialSpec, cfg: TrainConfig, run, workdir: Path, after, report) -> None:
    """A unit whose weights another unit trained (only the evaluation crop differs): evaluate
    that run's final checkpoint into this unit's run."""
    from ..tracking import evaluate_tracked, trial_run

    assert spec.trained_run is not None
    try:
        weights = trial_run.download_final(spec.uri, spec.trained_run, workdir.parent / "trained")
        metrics = evaluate_tracked(cfg, run, weights, after, spec.trained_run)
    except RETRYABLE:
        raise
    except Exception as e:
        report({"row": spec.row, "failed": 1, "reason": failure_reason(e, workdir)[:500], "run_id": run.run_id})
        return
    report({"row": spec.row, "finished": 1, "run_id": run.run_id, **metrics})


def _run_data_parallel(spec: TrialSpec) -> None:
    """A TorchTrainer inside the Tune trial (Ray 2.60's pattern: the trial is a small driver);
    its workers run :func:`_data_parallel_worker`, Tune hears rank 0's reports."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    trainer = TorchTrainer(
        _data_parallel_worker,
        train_loop_config={"trial": spec},
        scaling_config=ScalingConfig(
            num_workers=spec.workers, use_gpu=spec.gpu, resources_per_worker=spec.worker_resources or {"CPU": 1}
        ),
        torch_config=TorchConfig(backend="nccl" if spec.gpu else "gloo"),
        run_config=RunConfig(
            name=f"{spec.row}-{spec.run_id[:12]}",
            storage_path=spec.storage or str(Path(spec.workdir).resolve().parent / "train"),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()


def _data_parallel_worker(config: dict) -> None:
    """Rank 0 trains, evaluates and tracks as a plain trial does; the other ranks train their
    shards alongside (no MLflow) and report as often, since Ray Train's report is collective."""
    import ray.train

    from ..training import Trainer

    spec: TrialSpec = config["trial"]
    if not spec.gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if ray.train.get_context().get_world_rank() == 0:
        _train(spec, ray.train.report, live=False)
        return
    rank = ray.train.get_context().get_world_rank()
    try:
        cfg, workdir = _prepare(spec, rank)
        Trainer(cfg, workdir, [_Report(spec.row, cfg.optim.epochs, ray.train.report)], progress=False).fit()
    except Exception:  # rank 0 meets the same error and reports it with its reason
        pass
    ray.train.report({"row": spec.row})
