"""What a trial reads from and writes to its own MLflow run (status and tags when it starts, the
checkpoint it continues from, the final weights of the run it builds on): the runner's trial
calls these and never talks to MLflow itself. Every call retries while SQLite is locked."""

from __future__ import annotations

from pathlib import Path

from .callback import CHECKPOINT_EPOCH
from .store import client, retry_locked, set_tags


def has_tag(uri: str, run_id: str, key: str) -> bool:
    return key in retry_locked(lambda: client(uri).get_run(run_id)).data.tags


def set_tag(uri: str, run_id: str, key: str, value: str) -> None:
    retry_locked(lambda: client(uri).set_tag(run_id, key, value))


def mark_started(uri: str, run_id: str, tags: dict[str, str]) -> None:
    """RUNNING with ``tags``, without the failure reason of an earlier attempt of this run."""
    c = client(uri)
    retry_locked(lambda: c.update_run(run_id, status="RUNNING"))
    set_tags(c, run_id, tags)
    if "failure_reason" in retry_locked(lambda: c.get_run(run_id)).data.tags:
        retry_locked(lambda: c.delete_tag(run_id, "failure_reason"))


def stored_checkpoint_epoch(uri: str, run_id: str) -> int | None:
    """How many epochs the checkpoint stored with the run holds (tag ``checkpoint_epoch``)."""
    value = retry_locked(lambda: client(uri).get_run(run_id)).data.tags.get(CHECKPOINT_EPOCH)
    return None if value is None else int(value)


def download_checkpoint(uri: str, run_id: str, name: str, dest: Path) -> Path | None:
    """The run's artifact ``checkpoint/<name>`` into ``dest``; None when the run has none."""
    c = client(uri)
    names = {a.path for a in retry_locked(lambda: c.list_artifacts(run_id, "checkpoint"))}
    if f"checkpoint/{name}" not in names:
        return None
    return Path(c.download_artifacts(run_id, f"checkpoint/{name}", str(dest)))


def download_final(uri: str, run_id: str, cache: Path) -> Path:
    """A finished run's final checkpoint (a backbone, or the weights an evaluation-only unit
    evaluates), downloaded once per node (a file per run id in ``cache``)."""
    local = cache / f"{run_id}.pt"
    if not local.exists():
        tmp = cache / f"{run_id}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        got = Path(client(uri).download_artifacts(run_id, "checkpoint/last.pt", str(tmp)))
        got.replace(local)
    return local
