"""Tune's events to the driver's live lines (progress.py)."""

from __future__ import annotations

from ray.tune import Callback

from .progress import Lines, Tally


class TrialLines(Callback):
    def __init__(self, tally: Tally | None = None, name: str = "table") -> None:
        self.lines = Lines(tally, name)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.lines.start(trial.trial_id, trial.config["trial"].row)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.lines.result(trial.trial_id, result)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.lines.error(
            trial.trial_id, trial.config["trial"].row, "its worker died more often than max_failures allows"
        )
