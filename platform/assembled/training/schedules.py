"""Per-step schedules: learning rate (linear warm-up from 0, then cosine to 0 or piecewise) and
DropBlock keep_prob (linear from 1 to its final value over all steps, warm-up included), as in
the official code."""

from __future__ import annotations

import math

from .config import OptimConfig


def learning_rate(step: int, total_steps: int, steps_per_epoch: float, cfg: OptimConfig) -> float:
    peak = cfg.lr
    warmup = int(steps_per_epoch * cfg.warmup_epochs)
    if step < warmup:
        return peak * step / warmup
    if cfg.schedule == "cosine":
        span = max(1, total_steps - warmup)
        t = min(step - warmup, span) / span
        return 0.5 * peak * (1 + math.cos(math.pi * t))
    passed = sum(step >= int(m * total_steps) for m in cfg.milestones)
    return peak * cfg.gamma**passed


def keep_prob(step: int, total_steps: int, final: float, start: float = 1.0) -> float:
    """Linear from ``start`` (1.0 from scratch; 0.9 when fine-tuning, as the FGVC script) to ``final``."""
    t = min(step, total_steps) / max(1, total_steps)
    return start - (start - final) * t
