"""What a search writes to MLflow: experiment ``search-<table>`` (the table's own experiment
stays the table's rows), one parent run per study (found again by tag ``optuna.study``, so a
resumed study keeps its parent), one child run per Optuna trial with the trial's parameters and
every metric an ablation row logs. Pruned trials end KILLED with tag ``optuna.state=PRUNED``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Param

from ..ablation.record import driver_tags, reap_orphans
from ..tracking import TrackedRun, finish_run, open_run
from ..tracking.headline import add_metrics
from ..tracking.store import client as make_client
from ..tracking.store import ensure_experiment, retry_locked, set_tags
from ..training import TrainConfig


@dataclass
class SearchRecorder:
    experiment: str
    study: str
    uri: str
    tags: dict[str, str]  # what the parent says about the search (row, table, objective, storage ...)
    experiment_id: str = ""
    parent_id: str = ""
    children: dict[int, str] = field(default_factory=dict)  # trial number -> run id

    def __post_init__(self) -> None:
        self.client = make_client(self.uri)

    def open(self) -> str:
        self.experiment_id = ensure_experiment(self.experiment, self.uri)
        reaped = reap_orphans(self.client, self.experiment_id, self.end)
        if reaped:
            print(f"{self.experiment}: marked {len(reaped)} run(s) KILLED whose driver is gone")
        found = retry_locked(
            lambda: self.client.search_runs(
                [self.experiment_id],
                f"tags.kind = 'search' and tags.`optuna.study` = '{self.study}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        )
        tags = {**self.tags, "kind": "search", "optuna.study": self.study, **driver_tags()}
        if found:
            self.parent_id = found[0].info.run_id
            retry_locked(lambda: self.client.update_run(self.parent_id, status="RUNNING"))
            set_tags(self.client, self.parent_id, tags)
        else:
            name = f"study {self.study}"
            run = retry_locked(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags))
            self.parent_id = run.info.run_id
        return self.parent_id

    def trial_run(self, number: int, cfg: TrainConfig, params: dict, row: str, extra: dict[str, str]) -> str:
        """The trial's run, SCHEDULED under the study's parent, with the searched parameters."""
        tags = {
            "kind": "trial",
            "row": row,
            "search_row": row,
            "optuna.study": self.study,
            "optuna.trial": str(number),
            **extra,
        }
        run = open_run(cfg, self.experiment, f"{row} trial {number}", self.parent_id, tags, self.uri)
        searched = [Param(f"search.{k}", str(v)) for k, v in params.items()]
        if searched:
            retry_locked(lambda: self.client.log_batch(run.run_id, params=searched))
        retry_locked(lambda: self.client.update_run(run.run_id, status="SCHEDULED"))
        self.children[number] = run.run_id
        return run.run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        add_metrics(self.client, run_id, metrics, tags)

    def tag_parent(self, tags: dict[str, str]) -> None:
        set_tags(self.client, self.parent_id, tags)

    def attach(self, path: Path) -> None:
        """A file (the best rows' YAML) as an artifact of the study's parent run."""
        retry_locked(lambda: self.client.log_artifact(self.parent_id, str(path)))

    def end(self, run_id: str, status: str, reason: str) -> None:
        finish_run(TrackedRun(run_id, self.experiment_id, self.uri), status, reason)

    def trial_runs(self) -> dict[int, object]:
        """Every trial run of the study (any invocation), by trial number: the newest wins."""
        runs = retry_locked(
            lambda: self.client.search_runs(
                [self.experiment_id],
                f"tags.kind = 'trial' and tags.`optuna.study` = '{self.study}'",
                order_by=["attributes.start_time DESC"],
                max_results=5000,
            )
        )
        out: dict[int, object] = {}
        for r in runs:
            out.setdefault(int(r.data.tags["optuna.trial"]), r)
        return out

    def close(self, status: str, reason: str = "") -> None:
        if status == "KILLED":
            for run_id in self.children.values():
                now = retry_locked(lambda run_id=run_id: self.client.get_run(run_id)).info.status
                if now in ("RUNNING", "SCHEDULED"):
                    self.end(run_id, "KILLED", reason or "interrupted")
        if reason:
            retry_locked(lambda: self.client.set_tag(self.parent_id, "failure_reason", reason[:5000]))
        retry_locked(lambda: self.client.set_terminated(self.parent_id, status=status))
