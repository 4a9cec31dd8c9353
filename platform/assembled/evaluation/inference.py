"""How an evaluation runs a network: device, precision and memory layout, one object for the
clean pass and for every corrupted and perturbed set. Relative mCE subtracts the clean error
from each corrupted one, so both must come from the same arithmetic (the issue: clean top-1 in
bf16 on a GPU, corrupted errors in FP32)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..training.config import TrainConfig


@dataclass(frozen=True)
class Inference:
    device: torch.device
    amp: bool = False
    dtype: torch.dtype = torch.bfloat16
    channels_last: bool = False

    @classmethod
    def of(cls, where: Inference | torch.device) -> Inference:
        """A bare device means FP32 in the default layout (CPU evaluation, tests)."""
        return where if isinstance(where, Inference) else cls(where)

    @classmethod
    def for_training(cls, cfg: TrainConfig, device: torch.device) -> Inference:
        """As the run trained: autocast and channels_last default on for CUDA (TrainConfig)."""
        return cls(
            device,
            cfg.uses_amp(device.type),
            torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16,
            cfg.uses_channels_last(device.type),
        )

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype] if self.amp else "fp32"

    def describe(self) -> str:
        """E.g. ``cuda/bf16 channels_last``: what every evaluation pass ran in (tag ``eval_compute``)."""
        return f"{self.device.type}/{self.precision}" + (" channels_last" if self.channels_last else "")

    def prepare(self, model: nn.Module) -> nn.Module:
        """The network on the device, in the layout its inputs will have, in eval mode."""
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        return model.to(self.device, memory_format=layout).eval()

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """FP32 logits of a normalised batch already on the device."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp):
            return model(x).float()
