"""One row of a table as a Ray Tune function trainable: a plain function of a config dict.

The payload carries everything explicitly (tracking URI, experiment, parent run, working
folder) because Ray runs trials in their own folders. State lives in the row's working folder
(checkpoint + the MLflow run id), so a retried trial (crash, killed worker) resumes its epoch
checkpoint and continues its own MLflow run. Failures that retrying cannot fix (NaN loss, bad
data, bad config) end the run FAILED with the reason and return normally, so Ray does not
retry them and the other trials go on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FAIL_ONCE_ENV = "ASSEMBLED_FAIL_ONCE_AT_EPOCH"  # test hook: the worker process dies once at that epoch


class _Report:
    """Forward each epoch to Tune (the driver prints the live line)."""

    def __init__(self, row: str, epochs: int, workdir: Path) -> None:
        self.row, self.epochs, self.workdir = row, epochs, workdir

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint: Path) -> None:
        from ray import tune

        marker = self.workdir / "fault_injected"
        fail_at = os.environ.get(FAIL_ONCE_ENV)
        tune.report({"row": self.row, "epoch": epoch + 1, "epochs": self.epochs, **metrics})
        if fail_at and int(fail_at) == epoch + 1 and not marker.exists():
            marker.write_text("1")
            os._exit(3)


def run_trial(config: dict[str, Any]) -> None:
    from ray import tune

    from ..data.folder import DataError
    from ..evaluation.suite import EvalConfig, suite_after_training
    from ..tracking import open_run, train_tracked
    from ..training import TrainConfig, TrainingDiverged

    p = config["trial"]
    if not p.get("gpu"):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU trials on GPU machines must not grab a GPU
    workdir = Path(p["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    run_file = workdir / "mlflow_run_id"
    try:
        cfg = TrainConfig.model_validate(p["train_cfg"])
    except Exception as e:  # a broken row: report, do not retry
        tune.report({"row": p["row"], "failed": 1, "reason": f"bad config: {e}"[:500]})
        return
    run = open_run(
        cfg,
        p["experiment"],
        p["row"],
        parent_run_id=p["parent_run_id"],
        tags=p["tags"],
        uri=p["uri"],
        run_id=run_file.read_text().strip() if run_file.exists() else None,
    )
    run_file.write_text(run.run_id)
    after = suite_after_training(cfg, eval_cfg=EvalConfig.model_validate(p["eval_cfg"]))
    try:
        result = train_tracked(cfg, run, workdir, [_Report(p["row"], cfg.optim.epochs, workdir)], after, progress=False)
    except (TrainingDiverged, DataError, ValueError) as e:
        tune.report({"row": p["row"], "failed": 1, "reason": f"{type(e).__name__}: {e}"[:500], "run_id": run.run_id})
        return
    tune.report({"row": p["row"], "finished": 1, "run_id": run.run_id, **{k: v for k, v in result.metrics.items()}})
