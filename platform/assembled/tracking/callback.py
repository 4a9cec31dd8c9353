"""A trainer callback that writes per-epoch metrics (step = epoch) to one MLflow run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from .store import retry_locked, set_tags

CHECKPOINT_EPOCH = "checkpoint_epoch"  # tag: the epoch of the checkpoint stored with the run


class MlflowCallback:
    """``checkpoint_every_epoch``: store the checkpoint with the run after every epoch (tag
    ``checkpoint_epoch``), so a trial retried on any node, or a table resumed from another
    machine, continues from the tracking server without a shared disk."""

    def __init__(
        self, client: MlflowClient, run_id: str, log_checkpoint: bool = True, checkpoint_every_epoch: bool = False
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.log_checkpoint = log_checkpoint
        self.every_epoch = checkpoint_every_epoch

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if isinstance(v, int | float)]
        retry_locked(lambda: self.client.log_batch(self.run_id, metrics=batch))

    def on_train_start(self, info: dict[str, Any]) -> None:
        tags = {f"data.{k}": str(v) for k, v in info.items() if k in ("num_classes", "train_images", "val_images")}
        tags["device"] = str(info.get("device"))
        for key in ("compute", "compile"):  # device type/precision, as the config hash has it; torch.compile
            if key in info:
                tags[key] = str(info[key])
        set_tags(self.client, self.run_id, tags)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint: Path) -> None:
        self.log_metrics(metrics, epoch + 1)
        if self.every_epoch and checkpoint is not None and Path(checkpoint).exists():
            retry_locked(lambda: self.client.log_artifact(self.run_id, str(checkpoint), "checkpoint"))
            retry_locked(lambda: self.client.set_tag(self.run_id, CHECKPOINT_EPOCH, str(epoch + 1)))

    def on_train_end(self, result: dict[str, Any]) -> None:
        skipped = result.get("skipped") or []
        if skipped:  # unreadable files: the count as a tag (metric per epoch), every name as an artifact
            retry_locked(lambda: self.client.set_tag(self.run_id, "skipped_images", str(len(skipped))))
            retry_locked(lambda: self.client.log_text(self.run_id, "\n".join(skipped) + "\n", "skipped_files.txt"))
        ckpt = result.get("checkpoint")
        if self.log_checkpoint and ckpt is not None and Path(ckpt).exists():
            retry_locked(lambda: self.client.log_artifact(self.run_id, str(ckpt), "checkpoint"))
