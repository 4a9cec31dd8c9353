"""Classification losses on probability targets: label smoothing and knowledge distillation.

LS (Szegedy et al. 2016): y' = (1 - eps) y + eps / K, applied after mixup. KD (Hinton et al.
2015) as the official code: hard (smoothed) CE plus T^2 * CE(softmax(teacher / T), softmax(z / T)),
both with weight 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth(targets: torch.Tensor, eps: float) -> torch.Tensor:
    return targets * (1 - eps) + eps / targets.shape[-1]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def distillation(logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * CE(p_teacher, softmax(z / T)); ``teacher_probs`` already softmax(teacher / T) (and mixed)."""
    return temperature**2 * soft_cross_entropy(logits.float() / temperature, teacher_probs)


def teacher_probabilities(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.softmax(teacher_logits.float() / temperature, dim=-1)
