"""The image-retrieval network of the paper's section 4.4: a ResNet backbone (its last stage at
stride 1), generalized-mean pooling, a 1x1 embedding with BN, and a training head.

As the official code: the embedding is conv1x1 (no bias) -> BN, retrieval compares those BN'd
embeddings by cosine; the ``softmax`` head classifies ReLU(embedding), the ``arcface`` head
gives the cosines between the L2-normalised embedding and class weights (the margin and scale
are the loss's, see training/losses.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GeM(nn.Module):
    """Generalized-mean pooling (Radenovic et al.): ``mean(clamp(x, eps)^p)^(1/p)`` over the
    map, ``p`` learnable (initialised at 3). p = 1 is average pooling; it grows towards max
    pooling. Computed in float32, as the official code does under mixed precision."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.float()
        pooled = x.float().clamp(min=self.eps).pow(p).mean((2, 3))
        return pooled.pow(1.0 / p)


class CosineHead(nn.Module):
    """Cosine of the angle between each L2-normalised embedding and each class weight."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(emb.float(), dim=1), F.normalize(self.weight.float(), dim=1))


class EmbeddingNet(nn.Module):
    """``backbone`` (a ResNet or BigLittle ResNet: ``stem`` and ``stages``) -> GeM -> embedding.

    ``forward`` gives the training logits (cosines for ``arcface``); :meth:`embed` the
    embedding retrieval ranks by. The backbone's own classifier is dropped."""

    def __init__(self, backbone: nn.Module, dim: int, num_classes: int, loss: str = "arcface", gem_p: float = 3.0):
        super().__init__()
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.pool = GeM(gem_p)
        self.embedding = nn.Linear(backbone.num_features, dim, bias=False)  # = the official conv1x1
        self.bn = nn.BatchNorm1d(dim)
        self.loss = loss
        self.head: nn.Module = CosineHead(dim, num_classes) if loss == "arcface" else nn.Linear(dim, num_classes)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone.stages(self.backbone.stem(x))
        return self.bn(self.embedding(self.pool(features)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.embed(x)
        return self.head(emb if self.loss == "arcface" else F.relu(emb))
