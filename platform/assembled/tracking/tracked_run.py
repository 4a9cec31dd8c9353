"""One training configuration as one MLflow run: params, tags, config, curves, checkpoint,
final metrics; the run ends FAILED with the reason when training raises.

Used by ``assembled train`` and by every ablation trial (which passes its parent run and, on a
retry, the run id it already opened, so a retried trial continues its own run).
"""

from __future__ import annotations

import json
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Param

from ..training import TrainConfig, Trainer, TrainResult, flatten
from ..training import checkpoint as ckpt
from ..training.stop import Stopped
from .callback import MlflowCallback
from .headline import DESCRIPTION_TAG, headline
from .health import failure_reason
from .provenance import provenance_tags
from .store import client as make_client
from .store import ensure_experiment, retry_locked, set_tags, tracking_uri

PARAM_MAX = 6000


@dataclass
class TrackedRun:
    run_id: str
    experiment_id: str
    uri: str


# the evaluation after training (the suite): metrics to log with the final epoch's, and tags
AfterTraining = Callable[[TrainResult], tuple[dict[str, float], dict[str, str]]]


def _record(evaluated: tuple[dict[str, float], dict[str, str]], cb: MlflowCallback) -> dict[str, float]:
    """Tag the run with an evaluation's tags (one request); its metrics go with the final epoch's."""
    metrics, tags = evaluated
    set_tags(cb.client, cb.run_id, tags)
    return metrics


def open_run(
    cfg: TrainConfig,
    experiment: str,
    run_name: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    uri: str | None = None,
    run_id: str | None = None,
) -> TrackedRun:
    """Create the run with params, tags and config (or re-open ``run_id`` untouched)."""
    uri = uri or tracking_uri()
    c = make_client(uri)
    exp_id = ensure_experiment(experiment, uri)
    if run_id is not None:
        retry_locked(lambda: c.update_run(run_id, status="RUNNING"))
        return TrackedRun(run_id, exp_id, uri)
    all_tags = {"mlflow.runName": run_name, **provenance_tags(cfg.config_hash()), **(tags or {})}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = retry_locked(lambda: c.create_run(exp_id, tags=all_tags, run_name=run_name))
    rid = run.info.run_id
    resolved = cfg.model_dump(mode="json")  # the model as every switch it has (model.name: what it was called)
    params = [Param(k, str(v)[:PARAM_MAX]) for k, v in flatten(resolved).items()]
    for i in range(0, len(params), 90):
        chunk = params[i : i + 90]
        retry_locked(lambda chunk=chunk: c.log_batch(rid, params=chunk))
    retry_locked(lambda: c.log_dict(rid, resolved, "config.json"))
    return TrackedRun(rid, exp_id, uri)


def finish_run(run: TrackedRun, status: str = "FINISHED", reason: str | None = None) -> None:
    c = make_client(run.uri)
    if reason:
        retry_locked(lambda: c.set_tag(run.run_id, "failure_reason", reason[:5000]))
    retry_locked(lambda: c.set_terminated(run.run_id, status=status))


def evaluate_tracked(
    cfg: TrainConfig,
    run: TrackedRun,
    checkpoint: str | Path,
    after_training: AfterTraining,
    trained_by_run: str,
) -> dict[str, float]:
    """Log into ``run`` the evaluation of weights that a training of the same config wrote
    (``TrainConfig.training_hash``: only the evaluation crop differs), with that training's
    final training metrics; the run says whose weights they are (tag ``trained_by_run``)."""
    from ..data.loaders import eval_batches
    from ..evaluation.inference import Inference
    from ..evaluation.top1 import evaluate_top1
    from ..training.trainer import resolve_device
    from ..training.transfer import build_network

    c = make_client(run.uri)
    cb = MlflowCallback(c, run.run_id, log_checkpoint=False)
    try:
        state = ckpt.load(checkpoint)
        theirs = TrainConfig.model_validate(state["config"])
        if theirs.training_hash() != cfg.training_hash() or state["epoch"] + 1 != cfg.optim.epochs:
            raise ValueError(f"{checkpoint}: not the final weights of this config's training")
        retry_locked(lambda: c.set_tag(run.run_id, "trained_by_run", trained_by_run))
        device = resolve_device(cfg.device)
        model = build_network(cfg, state["num_classes"])
        model.load_state_dict(state["model"])
        how = Inference.for_training(cfg, device)  # as the training's own validation ran
        model = how.prepare(model)
        trained = {k: v for k, v in state["history"][-1].items() if k in TRAINING_SIDE}
        clean = evaluate_top1(model, eval_batches(cfg.data, device), how)
        result = TrainResult(model, trained | clean, [], Path(checkpoint), resumed_from=0)
        final = {f"final_{k}": v for k, v in result.metrics.items() if k in ("top1", "top5", "loss")}
        final |= result.metrics | _record(after_training(result), cb)
        cb.log_metrics(final, cfg.optim.epochs)
        retry_locked(lambda: c.set_tag(run.run_id, DESCRIPTION_TAG, headline(final)))
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt | SystemExit) else "FAILED"
        finish_run(run, status, failure_reason(e, Path(checkpoint).parent) + "\n" + traceback.format_exc(limit=5))
        raise
    finish_run(run)
    return final


# what a run evaluated from another unit's weights takes over from that training
TRAINING_SIDE = ("loss", "lr", "epoch_time_s", "train_images_per_s", "skipped_images")


def train_tracked(
    cfg: TrainConfig,
    run: TrackedRun,
    workdir: str | Path | None = None,
    extra_callbacks: list | None = None,
    after_training: AfterTraining | None = None,
    progress: bool = True,
    finish: bool = True,
    checkpoint_every_epoch: bool = False,
) -> TrainResult:
    """Train ``cfg`` logging into ``run``; ``after_training`` (e.g. the evaluation suite) may add
    metrics and tags; ``checkpoint_every_epoch`` stores the checkpoint with the run after each epoch."""
    c = make_client(run.uri)
    cb = MlflowCallback(c, run.run_id, checkpoint_every_epoch=checkpoint_every_epoch)
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="assembled-"))
    try:
        result = Trainer(cfg, workdir, [cb, *(extra_callbacks or [])], progress=progress).fit()
        final = {f"final_{k}": v for k, v in result.metrics.items() if k in ("top1", "top5", "loss")}
        final |= {k: v for k, v in result.metrics.items() if k in ("top1", "top5")}
        if after_training is not None:
            final |= _record(after_training(result), cb)
        cb.log_metrics(final, len(result.history))
        result.metrics = {**result.metrics, **final}
        line = headline(result.metrics)
        retry_locked(lambda: c.set_tag(run.run_id, DESCRIPTION_TAG, line))
        retry_locked(lambda: c.log_text(run.run_id, json.dumps(result.history, indent=1), "history.json"))
    except BaseException as e:
        if finish:
            reason = failure_reason(e, workdir)
            # Ctrl-C, and Ray ending a worker (SystemExit) on an interrupted driver, are kills
            # (a callback that stops training on purpose, e.g. an Optuna pruner, too)
            status = "KILLED" if isinstance(e, KeyboardInterrupt | SystemExit | Stopped) else "FAILED"
            finish_run(run, status, reason + "\n" + traceback.format_exc(limit=5))
        raise
    if finish:
        finish_run(run)
    return result


def record_evaluation(uri: str, run_id: str, metrics: dict[str, float], tags: dict[str, str], end: bool) -> None:
    """An evaluation's metrics and tags in ``run_id`` (``assembled evaluate``); ``end``: the run
    was opened for it and ends FINISHED."""
    cb = MlflowCallback(make_client(uri), run_id)
    cb.log_metrics(metrics, 0)
    set_tags(cb.client, run_id, tags)
    if end:
        retry_locked(lambda: cb.client.set_terminated(run_id))
