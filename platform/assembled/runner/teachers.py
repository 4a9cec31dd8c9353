"""Teacher logits for KD rows: computed once per (teacher run, training data), stored as an
artifact of the teacher's run, and downloaded by every student that needs them."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch

from ..models import build_model
from ..tracking.teacher_logits import download_logits, upload_logits
from ..tracking.trial_run import download_checkpoint
from ..training import TrainConfig
from ..training import checkpoint as ckpt
from ..training.teacher import compute_teacher_logits, save_logits
from ..training.trainer import resolve_device

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


def ensure_logits(uri: str, teacher_run_id: str, student: TrainConfig, cache_dir: Path) -> tuple[Path, bool]:
    """Local path of the logits; ``True`` when they were computed now (not found). Computed on
    the student's device (a CPU profile's student never reaches for a GPU)."""
    name = f"{logits_key(teacher_run_id, student)}.pt"
    local = cache_dir / name
    if not local.exists() and (got := download_logits(uri, teacher_run_id, name, cache_dir)) is not None:
        got.replace(local)
    if local.exists():
        _finite(torch.load(local, map_location="cpu", weights_only=True))
        return local, False
    with tempfile.TemporaryDirectory() as tmp:
        path = download_checkpoint(uri, teacher_run_id, ckpt.LAST, Path(tmp))
        if path is None:
            raise TeacherFailed(f"teacher run {teacher_run_id} stored no final checkpoint")
        state = ckpt.load(path)
        teacher_cfg = TrainConfig.model_validate(state["config"])
        model = build_model(teacher_cfg.model, num_classes=state["num_classes"])
        model.load_state_dict(state["model"])
    device = resolve_device(student.device)
    logits = _finite(compute_teacher_logits(model, student.data, device, teacher_cfg.data.eval_crop))
    save_logits(logits, local)
    upload_logits(uri, teacher_run_id, local)
    return local, True
