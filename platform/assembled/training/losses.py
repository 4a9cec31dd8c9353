"""Classification losses on probability targets: label smoothing, knowledge distillation,
and ArcFace's angular margin (image retrieval).

LS (Szegedy et al. 2016): y' = (1 - eps) y + eps / K, applied after mixup. KD (Hinton et al.
2015) as the official code: hard (smoothed) CE plus T^2 * CE(softmax(teacher / T), softmax(z / T)),
both with weight 1.
"""

from __future__ import annotations

import math

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


def arc_margin(cosines: torch.Tensor, labels: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """ArcFace logits (Deng et al. 2019): ``s * cos(theta_y + m)`` for the true class and
    ``s * cos(theta_j)`` for the others. Where ``theta_y + m`` would pass pi (cos(theta_y) <=
    cos(pi - m)) the target uses ``cos(theta_y) - m * sin(m)``, which keeps it decreasing."""
    cos = cosines.float().clamp(-1.0, 1.0)
    target = cos.gather(1, labels[:, None])
    sin = (1.0 - target * target).clamp(min=0.0).sqrt()
    shifted = target * math.cos(margin) - sin * math.sin(margin)
    shifted = torch.where(target > math.cos(math.pi - margin), shifted, target - margin * math.sin(margin))
    return scale * cos.scatter(1, labels[:, None], shifted)
