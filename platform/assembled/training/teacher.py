"""Offline teacher logits for knowledge distillation (as the paper: computed once, stored).

The teacher sees the student's training images through eval preprocessing (no crop jitter,
flip, mixup or AutoAugment) at the teacher's own evaluation size (an EfficientNet-B7 teacher at
its 600 px, as the official code ran its teacher); one N x K tensor is saved, indexed like the
training set.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data import teacher_view
from ..data.config import DataConfig
from ..data.loaders import loader_for


@torch.no_grad()
def compute_teacher_logits(
    model: nn.Module, data: DataConfig, device: torch.device, size: int | None = None, batch_size: int = 128
) -> torch.Tensor:
    """``data``: the student's; ``size``: the teacher's evaluation crop (default the student's)."""
    model.eval().to(device)
    ds = teacher_view(data, size)
    out = torch.empty(len(ds), ds.num_classes)
    for x, _, idx in loader_for(ds, batch_size, False, data.num_workers):
        out[idx] = model(x.to(device)).float().cpu()
    return out


def save_logits(logits: torch.Tensor, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(logits, path)
    return path
