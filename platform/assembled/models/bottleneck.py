"""The ResNet bottleneck with every Assemble-ResNet switch, in the official op order.

conv1 1x1 -> BN -> DB -> ReLU; 3x3 conv (or SK) at stride s, or at stride 1 followed by a blur
when anti-aliasing the strided conv; conv3 1x1 -> BN (zero-gamma) -> DB; SE; add; ReLU.
DropBlock (DB) sits after each BN and after the projection shortcut's BN.
"""

from __future__ import annotations

import torch
from torch import nn

from .blur_pool import BlurPool2d
from .config import ModelConfig
from .layers import projection
from .selective_kernel import SelectiveKernel
from .squeeze_excite import SqueezeExcite

EXPANSION = 4


def _maybe(module: nn.Module | None) -> nn.Module:
    return module if module is not None else nn.Identity()


class Bottleneck(nn.Module):
    def __init__(
        self,
        cin: int,
        width: int,
        stride: int,
        cfg: ModelConfig,
        shortcut_style: str | None,
        drop_factory=None,
        last_relu: bool = True,
        unstrided: bool = False,
    ) -> None:
        super().__init__()
        cout = width * EXPANSION
        drop = drop_factory or (lambda: None)
        self.last_relu = last_relu
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=cfg.bn_momentum)
        self.drop1 = _maybe(drop())
        blur_after = cfg.anti_alias and cfg.aa_sconv and stride > 1
        mid_stride = 1 if blur_after else stride
        if cfg.sk:
            self.conv2: nn.Module = SelectiveKernel(
                width, mid_stride, cfg.sk, cfg.sk_reduction, cfg.sk_min_width, cfg.bn_momentum, cfg.sk_5x5 == "dense"
            )
            self.bn2: nn.Module = nn.Identity()
            self.act2: nn.Module = nn.Identity()
        else:
            self.conv2 = nn.Conv2d(width, width, 3, mid_stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width, momentum=cfg.bn_momentum)
            self.act2 = nn.ReLU(inplace=True)
        self.drop2 = _maybe(drop())
        self.blur = BlurPool2d(width, cfg.aa_filter, stride) if blur_after else nn.Identity()
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, momentum=cfg.bn_momentum)
        self.bn3.zero_gamma = cfg.zero_gamma  # read by init_weights
        self.drop3 = _maybe(drop())
        self.se = SqueezeExcite(cout, cfg.se_reduction) if cfg.se else nn.Identity()
        self.shortcut = (
            projection(cin, cout, stride, cfg, shortcut_style, drop(), unstrided)
            if shortcut_style is not None
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.drop1(self.bn1(self.conv1(x))))
        y = self.act2(self.drop2(self.bn2(self.conv2(y))))
        y = self.conv3(self.blur(y))
        y = self.se(self.drop3(self.bn3(y)))
        y = y + self.shortcut(x)
        return self.relu(y) if self.last_relu else y


def block_layer(
    cin: int,
    width: int,
    blocks: int,
    stride: int,
    cfg: ModelConfig,
    shortcut_style: str,
    drop_factory=None,
    last_relu: bool = True,
    unstrided: bool = False,
) -> nn.Sequential:
    """A stage: the first block projects (always, as in the official code) and strides.

    ``last_relu=False`` drops the final ReLU of the last block, as BigLittleNet's big branch
    does; the official code builds the first block apart and drops it only on the blocks after
    it, so a one-block stage keeps its ReLU. ``unstrided``: a downsampling stage run at stride 1
    (see :func:`~.layers.projection`)."""
    layers = []
    for i in range(blocks):
        layers.append(
            Bottleneck(
                cin if i == 0 else width * EXPANSION,
                width,
                stride if i == 0 else 1,
                cfg,
                shortcut_style if i == 0 else None,
                drop_factory,
                last_relu or i < blocks - 1 or i == 0,
                unstrided and i == 0,
            )
        )
    return nn.Sequential(*layers)
