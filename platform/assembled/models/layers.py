"""Small building blocks shared by the ResNet family: conv-BN(-ReLU), stems, shortcuts."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .blur_pool import BlurPool2d
from .config import ModelConfig
from .drop_block import DropBlock2d
from .tf_compat import SameAvgPool2x2, SameMaxPool2d


def conv_bn(cin: int, cout: int, k: int, stride: int, cfg: ModelConfig, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=cfg.bn_momentum),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def resnet_stem(cfg: ModelConfig) -> tuple[nn.Sequential, int]:
    """Stem of the v1 ResNet; returns it and its output width.

    Plain: 7x7/2 conv, 3x3/2 max-pool. ResNet-D (deep_stem): three 3x3 convs (w/2, w/2, w).
    With aa_maxpool the max-pool runs at stride 1 and a blur does the subsampling.
    ``small_input`` (CIFAR) keeps every stem op at stride 1 and drops the pool.
    """
    w = cfg.width
    first_stride = 1 if cfg.small_input else 2
    if cfg.deep_stem:
        layers = [
            *conv_bn(3, w // 2, 3, first_stride, cfg),
            *conv_bn(w // 2, w // 2, 3, 1, cfg),
            *conv_bn(w // 2, w, 3, 1, cfg),
        ]
    else:
        k = 3 if cfg.small_input else 7
        layers = list(conv_bn(3, w, k, first_stride, cfg))
    if not cfg.small_input:
        if cfg.aa_maxpool:
            layers += [nn.MaxPool2d(3, 1, 1), BlurPool2d(w, cfg.aa_filter, 2)]
        else:
            layers.append(SameMaxPool2d(3, 2) if cfg.official_tf else nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers), w


def projection(
    cin: int,
    cout: int,
    stride: int,
    cfg: ModelConfig,
    style: str,
    drop: DropBlock2d | None,
    unstrided: bool = False,
) -> nn.Sequential:
    """Projection shortcut of a stage's first block, in one of three styles.

    - ``plain``: 1x1 conv with the stride (blurred first when aa_proj).
    - ``resnet_d``: 2x2 average pool then 1x1 conv at stride 1 (He et al. 2019, "Bag of Tricks").
    - ``big_little``: 3x3 average pool (pad 1, padding counted) then 1x1 conv, as in bL-ResNet.

    ``unstrided``: a stage that would stride but does not (``last_stride: 1``) keeps its pool
    at stride 1 ('SAME' 2x2 for ResNet-D, as the official no_downsample), so the conv and BN keep
    their keys and a stride-2 backbone's weights load.
    """
    layers: list[nn.Module] = []
    conv_stride = stride
    if unstrided and stride == 1:
        if style == "resnet_d":
            layers.append(SameAvgPool2x2())
        elif style == "big_little":
            layers.append(nn.AvgPool2d(3, 1, padding=1, count_include_pad=True))
        elif cfg.anti_alias and cfg.aa_proj:
            layers.append(BlurPool2d(cin, cfg.aa_filter, 1))
    elif stride > 1:
        if style == "resnet_d":
            layers.append(nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False))
            conv_stride = 1
        elif style == "big_little":
            layers.append(nn.AvgPool2d(3, stride, padding=1, count_include_pad=True))
            conv_stride = 1
        elif cfg.anti_alias and cfg.aa_proj:
            layers.append(BlurPool2d(cin, cfg.aa_filter, stride))
            conv_stride = 1
    layers += [nn.Conv2d(cin, cout, 1, conv_stride, bias=False), nn.BatchNorm2d(cout, momentum=cfg.bn_momentum)]
    if drop is not None:
        layers.append(drop)
    if stride == 1 and style == "resnet_d" and cfg.official_tf:
        # the official graph's stage-1 quirk (tf_compat.py); named, so the weights keep their keys
        return nn.Sequential(OrderedDict([("tf_pool", SameAvgPool2x2()), *((str(i), m) for i, m in enumerate(layers))]))
    return nn.Sequential(*layers)
