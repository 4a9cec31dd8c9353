"""Params and MACs the way the paper (and the official code's TF profiler) counts them:
multiply-accumulates of convolutions and linear layers, batch 1, from torch's FlopCounterMode
(FLOPs / 2). BN, activations and pooling are not counted."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int) -> int:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, input_size, input_size, device=device))
    model.train(was_training)
    return int(counter.get_total_flops() // 2)
