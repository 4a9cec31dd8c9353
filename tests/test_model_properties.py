"""Behavioural properties of each technique."""

from __future__ import annotations

import pytest
import torch

from assembled.models import DropBlock2d, ModelConfig, build_model, list_models, resolve_config, set_keep_prob
from assembled.models.blur_pool import BlurPool2d, binomial_filter
from assembled.models.bottleneck import Bottleneck
from assembled.models.selective_kernel import SelectiveKernel

REQUIRED = [
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50d",
    "se_resnet50d",
    "resnet50d_sk",
    "resnet50d_sk_bl",
    "assemble_resnet50",
    "assemble_resnet152",
    "mobilenet_v1",
    "se_mobilenet_v1",
    *[f"efficientnet_b{i}" for i in range(8)],
]


def test_registry_has_required_names():
    assert set(REQUIRED) <= set(list_models())


def test_unknown_name_and_bad_key_are_clear():
    with pytest.raises(ValueError, match="unknown model 'resnet51'"):
        resolve_config("resnet51")
    with pytest.raises(ValueError, match="se_ratio"):
        resolve_config({"name": "resnet50", "se_ratio": 4})


def test_zero_gamma_block_is_identity_at_init():
    cfg = ModelConfig(sk="doubled_3x3", se=True)
    block = Bottleneck(64, 16, 1, cfg, None)
    from assembled.models.init import init_weights

    init_weights(block)
    block.eval()
    x = torch.relu(torch.randn(2, 64, 8, 8))
    assert torch.allclose(block(x), x)
    cfg_off = ModelConfig(zero_gamma=False)
    block_off = Bottleneck(64, 16, 1, cfg_off, None)
    init_weights(block_off)
    block_off.eval()
    assert not torch.allclose(block_off(x), x)


@pytest.mark.parametrize("kind", ["doubled_3x3", "3x3_5x5"])
def test_sk_attention_sums_to_one(kind):
    sk = SelectiveKernel(32, kind=kind).eval()
    paths = sk.branches(torch.randn(3, 32, 10, 10))
    assert paths.shape == (3, 2, 32, 10, 10)
    att = sk.attention(paths)
    assert torch.allclose(att.sum(1), torch.ones(3, 32, 1, 1), atol=1e-6)
    assert (att > 0).all() and (att < 1).all()


def test_sk_attention_width_floor():
    assert SelectiveKernel(64).fc_expand.in_channels == 32  # max(64/2, 32)
    assert SelectiveKernel(512).fc_expand.in_channels == 256
    assert SelectiveKernel(32, min_width=32).fc_expand.in_channels == 32


def test_blur_filter_values():
    assert torch.allclose(binomial_filter(3), torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)
    assert binomial_filter(5).sum().item() == pytest.approx(1.0)


def test_blur_makes_strided_layer_more_shift_stable():
    torch.manual_seed(0)
    x = torch.rand(8, 4, 32, 33)
    a, b = x[..., :-1], x[..., 1:]  # a one-pixel horizontal shift

    def naive(t):
        return t[..., ::2, ::2]

    blur = BlurPool2d(4, 3, 2)
    change_naive = (naive(a) - naive(b)).abs().mean()
    change_blur = (blur(a) - blur(b)).abs().mean()
    assert change_blur < 0.6 * change_naive


def test_aa_placements_change_the_model():
    base = build_model({"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1]}, 10)
    assert not any(isinstance(m, BlurPool2d) for m in base.modules())
    for switches, expected in [
        ({"aa_filter": 3, "aa_sconv": True}, 3),
        ({"aa_filter": 3, "aa_sconv": False, "aa_maxpool": True}, 1),
        ({"aa_filter": 3, "aa_sconv": False, "aa_proj": True}, 3),
        ({"aa_filter": 5, "aa_maxpool": True, "aa_proj": True, "aa_sconv": True}, 7),
    ]:
        m = build_model({"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1], **switches}, 10)
        assert sum(isinstance(x, BlurPool2d) for x in m.modules()) == expected, switches


def test_dropblock_rate_and_eval_identity():
    torch.manual_seed(0)
    db = DropBlock2d(block_size=5, gamma_scale=1.0, batch_shared=False)
    db.keep_prob = 0.9
    x = torch.ones(16, 32, 28, 28)
    db.train()
    y = db(x)
    dropped = (y == 0).float().mean().item()
    assert 0.07 < dropped < 0.13, dropped
    kept = y[y != 0]
    assert torch.allclose(kept, kept[0].expand_as(kept))  # uniform rescale of kept units
    assert abs(y.mean().item() - 1.0) < 0.02
    zeros = (y == 0)[0, 0]
    # blocks: every dropped pixel has a dropped 4-neighbour (no isolated drops)
    padded = torch.nn.functional.pad(zeros.float(), (1, 1, 1, 1))
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    assert (neighbours[zeros] > 0).all()
    db.eval()
    assert torch.equal(db(x), x)


def test_set_keep_prob_reaches_every_block():
    m = build_model({"name": "assemble_resnet50", "width": 8, "layers": [2, 2, 2, 2]}, 10)
    n = set_keep_prob(m, 0.8)
    assert n > 0 and all(b.keep_prob == 0.8 for b in m.modules() if isinstance(b, DropBlock2d))


@pytest.mark.parametrize(
    "spec,size",
    [
        ({"name": "assemble_resnet50", "width": 8, "layers": [2, 2, 2, 2]}, 64),
        ({"name": "assemble_resnet152", "width": 8, "layers": [2, 4, 4, 2]}, 64),
        ({"name": "resnet50d_sk", "width": 8, "layers": [1, 1, 1, 1], "small_input": True}, 32),
        ({"name": "resnet50d_sk_bl", "width": 8, "layers": [1, 1, 1, 1], "small_input": True}, 32),
        ({"name": "se_mobilenet_v1", "width_mult": 0.25, "dropblock": True}, 64),
    ],
)
def test_forward_backward_small(spec, size):
    m = build_model(spec, num_classes=7)
    set_keep_prob(m, 0.9)
    out = m(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    out.sum().backward()
