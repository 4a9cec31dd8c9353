"""What a search writes to MLflow: experiment ``search-<table>`` (the table's own experiment
stays the table's rows), one parent run per study (found again by tag ``optuna.study``, so a
resumed study keeps its parent), one child run per Optuna trial with the trial's parameters and
every metric an ablation row logs. Pruned trials end KILLED with tag ``optuna.state=PRUNED``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Run

from ..tracking.drivers import driver_tags
from ..tracking.invocation import Invocation
from ..training import TrainConfig


@dataclass
class SearchRecorder:
    experiment: str
    study: str
    uri: str
    tags: dict[str, str]  # what the parent says about the search (row, table, objective, storage ...)
    runs: Invocation = field(init=False)

    def __post_init__(self) -> None:
        self.runs = Invocation(self.uri, self.experiment)

    def open(self) -> str:
        self.runs.open_experiment()
        self.runs.reap()
        found = self.runs.find(f"tags.kind = 'search' and tags.`optuna.study` = '{self.study}'", max_results=1)
        tags = {**self.tags, "kind": "search", "optuna.study": self.study, **driver_tags()}
        if found:
            self.runs.continue_parent(found[0].info.run_id, tags)
        else:
            self.runs.create_parent(f"study {self.study}", tags)
        return self.runs.parent_id

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
        run_id = self.runs.new_trial_run(number, cfg, f"{row} trial {number}", tags)
        self.runs.log_params(run_id, {f"search.{k}": v for k, v in params.items()})
        return run_id

    def metrics(self, run_id: str) -> dict[str, float]:
        return self.runs.get(run_id).data.metrics

    def log_metrics(self, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        self.runs.log_metrics(run_id, metrics, tags)

    def tag_parent(self, tags: dict[str, str]) -> None:
        self.runs.tag_parent(tags)

    def attach(self, path: Path) -> None:
        """A file (the best rows' YAML) as an artifact of the study's parent run."""
        self.runs.attach(path)

    def end(self, run_id: str, status: str, reason: str) -> None:
        self.runs.end(run_id, status, reason)

    def trial_runs(self) -> dict[int, Run]:
        """Every trial run of the study (any invocation), by trial number: the newest wins."""
        out: dict[int, Run] = {}
        for r in self.runs.find(f"tags.kind = 'trial' and tags.`optuna.study` = '{self.study}'"):
            out.setdefault(int(r.data.tags["optuna.trial"]), r)
        return out

    def close(self, status: str, reason: str = "") -> None:
        if status == "KILLED":
            self.runs.end_children("KILLED", reason or "interrupted", rekill=False)
        self.runs.close(status, reason)
