"""Fine-tuning from a trained backbone: the network a config asks for, with every layer but its
head loaded from a checkpoint (the official WarmStartHook), and the paper's BN momentum rule.

Loading is strict: a layer the checkpoint lacks, one it has that the network does not, or a
shape that differs is an error naming the layers (a silent partial load would fine-tune from
noise and call it transfer). Only the head (``fc``; a retrieval net's embedding and classifier)
is new. As the official code restores trainable variables only, BN running statistics restart
(``bn_stats: reset``) unless the config keeps them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import build_model
from ..models.retrieval import EmbeddingNet
from .checkpoint import load
from .config import TrainConfig, TransferConfig

HEAD_PREFIXES = ("fc.", "classifier.")  # the classifiers a transfer replaces


class BackboneMismatch(ValueError):
    """The checkpoint's layers do not fit the network: retrying will not help."""


def build_network(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """The config's model with its head: the classifier, or the retrieval embedding net."""
    net = build_model(cfg.model, num_classes=num_classes)
    if cfg.head.kind == "embedding":
        h = cfg.head
        net = EmbeddingNet(net, h.dim, num_classes, h.loss, h.gem_p)
    return net


def backbone_of(net: nn.Module) -> nn.Module:
    return net.backbone if isinstance(net, EmbeddingNet) else net


def _names(keys, limit: int = 6) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_backbone(net: nn.Module, transfer: TransferConfig) -> None:
    """Every backbone tensor from ``transfer.checkpoint`` into ``net``, strictly, head excepted."""
    if not transfer.checkpoint:
        raise ValueError("transfer.checkpoint is not set: the backbone's weights were not fetched")
    state = load(transfer.checkpoint, torch.device("cpu"))
    weights = state.get("model", state)
    theirs = {k: v for k, v in weights.items() if not k.startswith(HEAD_PREFIXES)}
    target = backbone_of(net)
    ours = {k: v for k, v in target.state_dict().items() if not k.startswith(HEAD_PREFIXES)}
    missing, extra = set(ours) - set(theirs), set(theirs) - set(ours)
    shapes = {k for k in set(ours) & set(theirs) if ours[k].shape != theirs[k].shape}
    problems = []
    if missing:
        problems.append(f"the network has layers the checkpoint lacks: {_names(missing)}")
    if extra:
        problems.append(f"the checkpoint has layers the network lacks: {_names(extra)}")
    if shapes:
        problems.append(
            "shapes differ: " + _names(f"{k} {tuple(theirs[k].shape)} -> {tuple(ours[k].shape)}" for k in shapes)
        )
    if problems:
        raise BackboneMismatch(f"{transfer.checkpoint}: backbone does not fit: " + "; ".join(problems))
    if transfer.bn_stats == "reset":
        theirs = {
            k: v for k, v in theirs.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        }
    target.load_state_dict(theirs, strict=False)
    if transfer.bn_stats == "reset":
        for m in target.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()


def set_bn_momentum(net: nn.Module, transfer: TransferConfig, steps_per_epoch: int) -> float | None:
    """The paper's fine-tuning BN momentum max(1 - 10/s, 0.9) (TF's convention, the weight of the
    old statistics) as PyTorch's (the weight of the new batch): min(10/s, 0.1). Returns it."""
    if transfer.bn_momentum is None:
        return None
    momentum = min(10.0 / max(1, steps_per_epoch), 0.1) if transfer.bn_momentum == "auto" else transfer.bn_momentum
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = float(momentum)
    return float(momentum)
