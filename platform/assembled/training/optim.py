"""SGD with momentum and weight decay kept off BN parameters and biases (Goyal et al. 2017),
or, with ``decay_fc_bias``, off BN alone as the official Assemble code (TF: every variable but
batch_normalization's, so its FC bias, the only bias of its ResNets, decays)."""

from __future__ import annotations

import torch
from torch import nn

from .config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float, decay_fc_bias: bool = False) -> list[dict]:
    fc_biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None}
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        # 1-d parameters are BN/LN scales and shifts and biases
        keep_off = p.ndim <= 1 and not (decay_fc_bias and id(p) in fc_biases)
        (no_decay if keep_off else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.SGD:
    groups = param_groups(model, cfg.weight_decay, cfg.decay_fc_bias)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
