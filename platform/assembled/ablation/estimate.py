"""What a planned trial will cost, from the store's finished trials: the same config (its own
duration), else runs of the same model in the same profile scaled by epochs. Durations run from
the moment a trial started (tag ``trial_started``; runs made before it existed count from their
creation, which includes time waiting for a slot)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from ..training import TrainConfig


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str


def _seconds(run: Run) -> float | None:
    start = float(run.data.tags.get("trial_started") or run.info.start_time or 0)
    end = run.info.end_time
    return (end - start) / 1000 if end and start and end > start else None


class Estimator:
    def __init__(self, client: MlflowClient | None) -> None:
        self.runs: list[Run] = []
        if client is None:
            return
        ids = [e.experiment_id for e in client.search_experiments()]
        for i in range(0, len(ids), 100):
            self.runs += client.search_runs(
                ids[i : i + 100], "tags.kind = 'trial' and attributes.status = 'FINISHED'", max_results=5000
            )

    def __call__(self, cfg: TrainConfig, profile: str) -> Estimate | None:
        h = cfg.config_hash()
        same = [s for r in self.runs if r.data.tags.get("config_hash") == h and (s := _seconds(r))]
        if same:
            return Estimate(statistics.median(same), f"{len(same)} finished run(s) of this config")
        model = cfg.model.name
        if model is None:  # switches spelled out, no name to find its kind by
            return None
        per_epoch = [
            s / float(r.data.params.get("optim.epochs", 1))
            for r in self.runs
            if r.data.tags.get("profile") == profile
            and r.data.params.get("model.name", r.data.params.get("model")) == model
            and (s := _seconds(r))
        ]
        if per_epoch:
            return Estimate(
                statistics.median(per_epoch) * cfg.optim.epochs,
                f"scaled from {len(per_epoch)} finished {model} run(s) of profile {profile}",
            )
        return None
