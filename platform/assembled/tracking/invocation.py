"""The MLflow side of one invocation that owns trials (an ablation or a search): its parent run,
the trial runs it schedules under that parent, and how each ends. Both drivers write through
this class, so statuses stay true the same way under every fault: a run waiting for a slot is
SCHEDULED, an interrupted invocation ends what it had in flight, and a dead driver's leftovers
are ended by the next invocation (:mod:`.drivers`)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .drivers import UNFINISHED, reap_orphans
from .headline import add_metrics
from .store import client as make_client
from .store import ensure_experiment, retry_locked, set_tags
from .tracked_run import TrackedRun, finish_run, open_run

if TYPE_CHECKING:
    from mlflow.entities import Run

    from ..training import TrainConfig


@dataclass
class Invocation:
    uri: str
    experiment: str
    experiment_id: str = ""
    parent_id: str = ""
    children: dict[Hashable, str] = field(default_factory=dict)  # trial key -> run id, this invocation's

    def __post_init__(self) -> None:
        self.client = make_client(self.uri)

    def open_experiment(self) -> str:
        """The experiment (created when absent; under the store's schema lock, so not while
        holding it)."""
        self.experiment_id = ensure_experiment(self.experiment, self.uri)
        return self.experiment_id

    def reap(self) -> list[str]:
        """End what a dead driver left RUNNING or SCHEDULED in the experiment (KILLED, saying so)."""
        reaped = reap_orphans(self.client, self.experiment_id, self.end)
        if reaped:
            print(f"{self.experiment}: marked {len(reaped)} run(s) KILLED whose driver is gone")
        return reaped

    def find(self, where: str, max_results: int = 5000) -> list[Run]:
        """Runs of the experiment matching an MLflow filter, newest first."""
        return retry_locked(
            lambda: self.client.search_runs(
                [self.experiment_id], where, order_by=["attributes.start_time DESC"], max_results=max_results
            )
        )

    def get(self, run_id: str) -> Run:
        return retry_locked(lambda: self.client.get_run(run_id))

    # -- the parent --------------------------------------------------------------------------
    def create_parent(self, name: str, tags: dict[str, str]) -> str:
        run = retry_locked(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags))
        self.parent_id = run.info.run_id
        return self.parent_id

    def continue_parent(self, run_id: str, tags: dict[str, str]) -> None:
        """An earlier invocation's parent, RUNNING again under this one (a resumed study)."""
        self.parent_id = run_id
        retry_locked(lambda: self.client.update_run(run_id, status="RUNNING"))
        set_tags(self.client, run_id, tags)

    def drop_parent(self) -> None:
        """Delete the parent (nothing ran under it: a rival invocation won)."""
        retry_locked(lambda: self.client.delete_run(self.parent_id))
        self.parent_id = ""

    def tag_parent(self, tags: dict[str, str]) -> None:
        set_tags(self.client, self.parent_id, tags)

    def attach(self, path: Path) -> None:
        """A file as an artifact of the parent run."""
        retry_locked(lambda: self.client.log_artifact(self.parent_id, str(path)))

    def attach_dict(self, data: dict[str, Any], name: str) -> None:
        retry_locked(lambda: self.client.log_dict(self.parent_id, data, name))

    def close(self, status: str, reason: str = "") -> None:
        """The parent's final status, with the reason when it did not finish."""
        finish_run(TrackedRun(self.parent_id, self.experiment_id, self.uri), status, reason or None)

    # -- trial runs --------------------------------------------------------------------------
    def new_trial_run(self, key: Hashable, cfg: TrainConfig, name: str, tags: dict[str, str]) -> str:
        """A new run (params, tags, config) SCHEDULED under the parent."""
        run_id = open_run(cfg, self.experiment, name, parent_run_id=self.parent_id, tags=tags, uri=self.uri).run_id
        return self._schedule(key, run_id)

    def continue_trial_run(self, key: Hashable, run: Run) -> str:
        """An earlier invocation's KILLED or FAILED run of the same config, SCHEDULED under this
        parent (the trial continues it from its checkpoint); it says which parent it came from."""
        run_id = run.info.run_id
        old_parent = run.data.tags.get("mlflow.parentRunId", "")
        set_tags(self.client, run_id, {"resumed_from_parent": old_parent, "mlflow.parentRunId": self.parent_id})
        return self._schedule(key, run_id)

    def _schedule(self, key: Hashable, run_id: str) -> str:
        retry_locked(lambda: self.client.update_run(run_id, status="SCHEDULED"))
        self.children[key] = run_id
        return run_id

    def tag(self, run_id: str, tags: dict[str, str]) -> None:
        set_tags(self.client, run_id, tags)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, str(v)) for k, v in params.items()]
        if batch:
            retry_locked(lambda: self.client.log_batch(run_id, params=batch))

    def log_metrics(self, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        """Metrics measured after a trial ended (its throughput), with the tags that say how."""
        add_metrics(self.client, run_id, metrics, tags)

    def end(self, run_id: str, status: str, reason: str) -> None:
        """End a run FAILED or KILLED with the reason, as a trial's own run would end."""
        finish_run(TrackedRun(run_id, self.experiment_id, self.uri), status, reason)

    def end_children(self, status: str, reason: str, rekill: bool) -> None:
        """End this invocation's trial runs still SCHEDULED or RUNNING with ``status``; with
        ``rekill``, also rewrite the reason of one its trial already ended KILLED (a Ctrl-C
        reaches the workers too, and their own reason would not say how to resume)."""
        for run_id in self.children.values():
            now = self.get(run_id).info.status
            if now in UNFINISHED or (rekill and now == "KILLED"):
                self.end(run_id, status, reason)
