"""Teacher logits for KD rows: computed once per (teacher run, training data), stored as an
artifact of the teacher's run, and downloaded by every student that needs them."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from ..models import build_model
from ..tracking.store import retry_locked
from ..training import TrainConfig
from ..training import checkpoint as ckpt
from ..training.teacher import compute_teacher_logits, save_logits

IDENTITY_KEYS = (
    "kind",
    "path",
    "num_classes",
    "train_size",
    "source_size",
    "eval_size",
    "image_size",
    "limit_per_class",
    "seed",
)


class TeacherFailed(RuntimeError):
    """The teacher cannot teach (its logits are NaN or infinite): its row fails, its students are blocked."""


def _finite(logits: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(logits).all():
        bad = 100 * (~torch.isfinite(logits)).any(1).float().mean().item()
        raise TeacherFailed(f"teacher logits are not finite ({bad:.0f}% of the images)")
    return logits


def logits_key(teacher_run_id: str, student: TrainConfig) -> str:
    ident = {k: getattr(student.data, k) for k in IDENTITY_KEYS}
    blob = json.dumps({"teacher": teacher_run_id, "data": ident}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_logits(
    client: MlflowClient, teacher_run_id: str, student: TrainConfig, cache_dir: Path
) -> tuple[Path, bool]:
    """Local path of the logits; ``True`` when they were computed now (not found)."""
    key = logits_key(teacher_run_id, student)
    name = f"{key}.pt"
    local = cache_dir / name
    if local.exists():
        _finite(torch.load(local, map_location="cpu", weights_only=True))
        return local, False
    listed = {a.path for a in retry_locked(lambda: client.list_artifacts(teacher_run_id, "teacher_logits"))}
    cache_dir.mkdir(parents=True, exist_ok=True)
    if f"teacher_logits/{name}" in listed:
        got = Path(client.download_artifacts(teacher_run_id, f"teacher_logits/{name}", str(cache_dir)))
        got.replace(local)
        _finite(torch.load(local, map_location="cpu", weights_only=True))
        return local, False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(teacher_run_id, "checkpoint/last.pt", tmp))
        state = ckpt.load(path)
        teacher_cfg = TrainConfig.model_validate(state["config"])
        model = build_model(teacher_cfg.model, num_classes=state["num_classes"])
        model.load_state_dict(state["model"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logits = _finite(compute_teacher_logits(model, student.data, device, teacher_cfg.data.eval_crop))
    save_logits(logits, local)
    retry_locked(lambda: client.log_artifact(teacher_run_id, str(local), "teacher_logits"))
    return local, True
