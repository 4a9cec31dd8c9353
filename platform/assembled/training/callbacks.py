"""How the trainer reports: any object with these methods (all optional) can listen, so a
test, the CLI's MLflow logger or a Ray trial drive the same trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class TrainCallback(Protocol):
    def on_train_start(self, info: dict[str, Any]) -> None: ...
    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint: Path) -> None: ...
    def on_train_end(self, result: dict[str, Any]) -> None: ...


def notify(callbacks: list, event: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, event, None)
        if fn is not None:
            fn(*args)
