"""Datasets whose decoded images all sit in one uint8 tensor (synthetic scenes, CIFAR pickles)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class InMemoryImages(Dataset):
    """``images`` (N x 3 x H x W uint8) and ``targets``; items are ``(image, label, index)``,
    the index letting the trainer look up per-sample data such as teacher logits."""

    images: torch.Tensor
    targets: torch.Tensor | list[int]
    transform = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[i]), i
