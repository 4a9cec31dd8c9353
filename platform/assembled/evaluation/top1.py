"""Clean top-1 / top-5 of a model over a loader: the trainer's validation every epoch and the
evaluation suite's clean pass (one definition for both)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from ..data.transforms import to_model_input
from .inference import Inference


@torch.no_grad()
def evaluate_top1(model: torch.nn.Module, loader: Iterable, on: Inference | torch.device) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%), mean CE loss, and how many classes the model predicts at all
    (1 = constant predictions: such a model also "never flips", so its mFR of 0 is no virtue).
    ``on``: the run's inference (a bare device: FP32)."""
    how = Inference.of(on)
    device = how.device
    model.eval()
    predicted: torch.Tensor | None = None
    correct1 = torch.zeros((), device=device)
    correct5 = torch.zeros((), device=device)
    loss = torch.zeros((), device=device)
    n = 0
    for x, y, _ in loader:
        x, y = to_model_input(x, device), y.to(device, non_blocking=True)  # uint8 batches normalised here
        logits = how.logits(model, x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum()
        correct5 += (top == y[:, None]).any(1).sum()
        if predicted is None:
            predicted = torch.zeros(logits.shape[1], dtype=torch.long, device=device)
        # scatter, not bincount: bincount sizes its output from the data, a host sync per batch on a GPU
        predicted.index_add_(0, top[:, 0], torch.ones_like(top[:, 0]))
        n += y.numel()
    return {
        "top1": 100.0 * correct1.item() / max(n, 1),
        "top5": 100.0 * correct5.item() / max(n, 1),
        "val_loss": loss.item() / max(n, 1),
        "val_pred_classes": float((predicted > 0).sum().item()) if predicted is not None else 0.0,
    }
