"""The Optuna side of a search: the study in an RDB storage (SQLite beside the MLflow store by
default, any SQLAlchemy URL by flag), its objectives, sampler and pruner, the driver that owns
it, and the repair of trials a killed driver left RUNNING (marked FAIL, parameters re-enqueued).

Design (see ../../README.md, "Optuna searches"): an ask/tell loop on the driver; each trial runs
as an ablation-style Ray trial; a trial that may be pruned reopens the study in its worker and
reports per-epoch validation top-1 there, so Optuna's own pruner decides (Ray Tune's
OptunaSearch never asks Optuna to prune, and stores scheduler-stopped trials as COMPLETE).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config_io import ConfigError
from ..redact import redact

if TYPE_CHECKING:
    import optuna

DIRECTIONS = {"top1": "maximize", "mce": "minimize", "mfr": "minimize", "throughput": "maximize"}
SAMPLERS = ("tpe", "random", "nsga2", "cmaes")
PRUNERS = ("median", "halving", "none")


@dataclass(frozen=True)
class Objective:
    metrics: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Objective:
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        bad = [n for n in names if n not in DIRECTIONS]
        if not names or bad or len(set(names)) != len(names):
            raise ConfigError(
                f"--objective {text!r}: give one or two of {', '.join(DIRECTIONS)} (e.g. top1 or top1,throughput)"
            )
        return cls(names)

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[m] for m in self.metrics]

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    @property
    def prunable(self) -> bool:
        """Per-epoch values exist only for top-1; Optuna 5 refuses report() in multi-objective studies."""
        return self.metrics == ("top1",)

    def __str__(self) -> str:
        return ",".join(self.metrics)


def default_storage(tracking_uri: str) -> str:
    """``optuna.db`` beside a SQLite MLflow store, else in the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri.removeprefix('sqlite:///')).parent / 'optuna.db'}"
    return f"sqlite:///{Path.cwd() / 'optuna.db'}"


def storage(url: str):
    """An RDB storage; SQLite waits for its lock (trials report from several processes at once)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def make_pruner(kind: str):
    """Median (after 2 completed trials: toy budgets have few) or successive halving."""
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def make_sampler(kind: str, objective: Objective, seed: int | None):
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if objective.multi:
        raise ConfigError("--sampler cmaes takes one objective")
    return optuna.samplers.CmaEsSampler(seed=seed)


def open_study(name: str, url: str, objective: Objective, sampler, pruner, identity: dict) -> optuna.Study:
    """Create or continue the study; one that exists must search the same thing (row, config,
    objective, space), else continuing it would mix two searches."""
    import optuna

    study = optuna.create_study(
        storage=storage(url),
        study_name=name,
        directions=objective.directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    had = study.user_attrs.get("identity")
    if had is None:
        study.set_user_attr("identity", identity)
    elif had != identity:
        diff = sorted(k for k in set(had) | set(identity) if had.get(k) != identity.get(k))
        raise ConfigError(
            f"study {name!r} in {redact(url)} searches something else ({', '.join(diff)} differ): "
            "give --study a new name to start another study"
        )
    return study


def claim(study: optuna.Study) -> None:
    """Make this process the study's driver, unless a live driver on this host still runs it."""
    from ..tracking.drivers import driver_gone, driver_tags

    prev = study.user_attrs.get("driver")
    if prev and prev.get("driver.pid") != str(os.getpid()) and not driver_gone(prev):
        if prev.get("driver.host") == socket.gethostname():
            raise ConfigError(
                f"study {study.study_name!r} is being run by process {prev['driver.pid']} on this host; "
                "wait for it or stop it first"
            )
    study.set_user_attr("driver", driver_tags())


def repair(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a driver that is gone: FAIL with the reason, their parameters
    enqueued again so the search still evaluates them. Returns their numbers."""
    from optuna.trial import TrialState

    left = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in left:
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "its driver process was killed")
        study.tell(t.number, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return [t.number for t in left]


def counted(study: optuna.Study) -> int:
    """Trials that count towards the requested number: COMPLETE and PRUNED."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


@dataclass(frozen=True)
class PruneLink:
    """Where a searched trial reports its per-epoch validation top-1 and asks whether to stop
    (the runner's ``Pruning``): pickled into the trial's spec, opened in its worker."""

    storage: str
    study: str
    trial_id: int
    pruner: str

    def open(self) -> optuna.trial.Trial:
        """The worker's handle on the running trial: report() and should_prune() on the shared storage."""
        import optuna

        study = optuna.load_study(study_name=self.study, storage=storage(self.storage), pruner=make_pruner(self.pruner))
        return optuna.trial.Trial(study, self.trial_id)
