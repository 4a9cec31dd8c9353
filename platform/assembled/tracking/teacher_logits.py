"""Teacher logits kept as artifacts of the teacher's run (``teacher_logits/<key>.pt``): computed
once per teacher run and training data, then downloaded by every student that needs them."""

from __future__ import annotations

from pathlib import Path

from .store import client, retry_locked

FOLDER = "teacher_logits"


def download_logits(uri: str, run_id: str, name: str, dest: Path) -> Path | None:
    """The run's stored logits ``name`` into the folder ``dest``; None when it has none."""
    c = client(uri)
    listed = {a.path for a in retry_locked(lambda: c.list_artifacts(run_id, FOLDER))}
    if f"{FOLDER}/{name}" not in listed:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    return Path(retry_locked(lambda: c.download_artifacts(run_id, f"{FOLDER}/{name}", str(dest))))


def upload_logits(uri: str, run_id: str, path: Path) -> None:
    retry_locked(lambda: client(uri).log_artifact(run_id, str(path), FOLDER))
