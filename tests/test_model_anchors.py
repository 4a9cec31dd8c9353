"""Params and MACs against the official counts (spec section 1.11, 1001 classes), within 3%."""

from __future__ import annotations

import pytest
import torch

from assembled.evaluation import count_macs, count_params
from assembled.models import build_model

ANCHORS = [
    # name, input, params, GMACs (None: not published)
    ("resnet50", 224, 25_559_081, 4.09),
    ("resnet101", 224, 44_551_209, 7.80),
    ("resnet152", 224, 60_194_857, 11.51),
    ("resnet50d", 224, 25_578_313, 4.33),
    ("resnet50d_sk", 224, 38_793_097, 6.18),
    ("resnet50d_sk_bl", 256, 41_848_489, 5.44),
    ("assemble_resnet50", 256, 41_848_489, 7.48),
    ("assemble_resnet152", 256, 117_006_249, 20.47),
]


@pytest.mark.parametrize("name,size,params,gmacs", ANCHORS, ids=[a[0] for a in ANCHORS])
def test_official_counts(name, size, params, gmacs):
    torch.manual_seed(0)
    model = build_model(name, num_classes=1001)
    p = count_params(model)
    assert abs(p - params) / params < 0.03, f"{name}: {p} params vs official {params}"
    m = count_macs(model, size) / 1e9
    assert abs(m - gmacs) / gmacs < 0.03, f"{name}: {m:.3f} GMACs vs official {gmacs}"


def test_se_adds_params_not_macs():
    base, se = build_model("resnet50d", 1001), build_model("se_resnet50d", 1001)
    assert count_params(se) - count_params(base) == 28_093_257 - 25_578_313
    assert count_macs(se, 64) > count_macs(base, 64)


def test_original_sk_costs_the_doubled_3x3_unless_dense():
    """SKNet's 3x3+5x5 builds the 5x5 as a dilated 3x3; only the dense option is heavier."""
    doubled = build_model({"name": "resnet50", "sk": "doubled_3x3"}, 10)
    original = build_model({"name": "resnet50", "sk": "3x3_5x5"}, 10)
    dense = build_model({"name": "resnet50", "sk": "3x3_5x5", "sk_5x5": "dense"}, 10)
    assert count_macs(original, 64) == count_macs(doubled, 64) < count_macs(dense, 64)


@pytest.mark.parametrize("name,gparams", [("efficientnet_b0", 5.29), ("mobilenet_v1", 4.23)])
def test_reference_models(name, gparams):
    assert abs(count_params(build_model(name, 1000)) / 1e6 - gparams) < 0.05
