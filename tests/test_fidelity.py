"""Where the platform follows the official code (spec sections 1-2): Table 2's C2 cost, the TF
compatibility switch, MobileNet's DropBlock placement, BigLittle's one-block branches, the
teacher's own resolution for KD logits, the eval resize and the order of epoch budgets."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from assembled.ablation.plan import build_plan
from assembled.data.transforms import eval_resize
from assembled.evaluation import count_macs, count_params
from assembled.models import build_model
from assembled.models.drop_block import DropBlock2d
from assembled.models.tf_compat import SameAvgPool2x2, SameMaxPool2d

from .conftest import cli


def test_table2_c2_costs_what_a_3x3_costs():
    """SKNet's second path is a dilated 3x3: C2 has C3's params and MACs (the dense 5x5 had
    58.9M / 9.23 GMACs), as the paper's throughput ratio 326 / 382 implies."""
    r = cli("profile", "table02:C2", "--json")
    assert r.returncode == 0, r.stderr
    c2 = json.loads(r.stdout)
    c3 = json.loads(cli("profile", "table02:C3", "--json").stdout)
    assert abs(c2["macs"] / c3["macs"] - 1) < 0.05 and c2["params"] == c3["params"] == 38_771_816
    dense = build_model({"name": "resnet50", "sk": "3x3_5x5", "sk_5x5": "dense"})
    assert count_params(dense) == 58_891_368 and count_macs(dense, 224) / 1e9 == pytest.approx(9.23, abs=0.01)
    conv = build_model({"name": "resnet50", "sk": "3x3_5x5"}).stages[0][0].conv2.paths[1][0]
    assert conv.kernel_size == (3, 3) and conv.dilation == (2, 2) and conv.padding == (2, 2)


def test_official_tf_switch_pools_like_the_tf_graph():
    plain = build_model({"name": "resnet50d", "width": 8})
    tf = build_model({"name": "resnet50d", "width": 8, "official_tf": True})
    assert not any(isinstance(m, SameAvgPool2x2 | SameMaxPool2d) for m in plain.modules())
    # stage 1's first block: the shortcut has the stride-1 average pool before its 1x1 conv
    shortcut = tf.stages[0][0].shortcut
    assert isinstance(shortcut[0], SameAvgPool2x2) and isinstance(shortcut[1], torch.nn.Conv2d)
    assert isinstance(tf.stem[-1], SameMaxPool2d)
    # 'SAME' on an even map pads 0 before and 1 after: output (i, j) is the max of rows/cols 2i..2i+2
    x = torch.arange(36.0).view(1, 1, 6, 6)
    out = tf.stem[-1](x)
    expected = torch.tensor([[14.0, 16.0, 17.0], [26.0, 28.0, 29.0], [32.0, 34.0, 35.0]])
    assert torch.equal(out[0, 0], expected)
    assert not torch.equal(out, F.max_pool2d(x, 3, 2, 1))  # PyTorch's symmetric padding differs
    # the stride-1 average pool divides by valid elements only (bottom-right corner: itself)
    y = SameAvgPool2x2()(x)
    assert y[0, 0, 0, 0] == (0 + 1 + 6 + 7) / 4 and y[0, 0, 5, 5] == 35 and y[0, 0, 5, 0] == (30 + 31) / 2
    # same weights, different graph: the switch changes the logits, the parameters are shared
    tf.load_state_dict(plain.state_dict())
    img = torch.randn(2, 3, 64, 64)
    assert not torch.allclose(plain.eval()(img), tf.eval()(img))


def test_mobilenet_dropblock_from_the_first_14x14_block():
    m = build_model({"name": "mobilenet_v1", "dropblock": True})
    blocks = [mod for mod in m.modules() if isinstance(mod, DropBlock2d)]
    assert [b.gamma_scale for b in blocks] == [0.25] * 6 + [1.0] * 2
    x = torch.randn(1, 3, 224, 224)
    sizes = []
    hooks = [b.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-1])) for b in blocks]
    m.eval()(x)
    for h in hooks:
        h.remove()
    assert sizes == [14] * 6 + [7] * 2


def test_biglittle_one_block_big_branch_keeps_its_relu():
    one = build_model({"name": "resnet50d_sk_bl", "width": 8, "layers": [1, 1, 1, 1]})
    assert all(stage.big[-1].last_relu for stage in list(one.stages)[:3])
    full = build_model({"name": "resnet50d_sk_bl", "width": 8})
    for stage in list(full.stages)[:3]:
        assert stage.big[0].last_relu and not stage.big[-1].last_relu  # 2, 3, 5 blocks: only the last drops it


def test_eval_resize_truncates_like_the_official_code():
    assert eval_resize(224) == 256 and eval_resize(256) == 292


def test_teacher_logits_use_the_teachers_resolution(monkeypatch):
    """The student sees 32 px here; its EfficientNet-B7 teacher is evaluated at its own crop."""
    import assembled.training.teacher as teacher

    seen = []
    real = teacher.teacher_view
    monkeypatch.setattr(teacher, "teacher_view", lambda data, size=None: seen.append(size) or real(data, size))
    model = build_model({"name": "resnet50", "width": 8, "layers": [1, 1, 1, 1]}, num_classes=4)
    data = build_plan("6", "smoke").rows["T0"].cfg.data
    out = teacher.compute_teacher_logits(model, data, torch.device("cpu"), size=48)
    assert seen == [48] and out.shape == (data.train_size, 4)
    ds = teacher.teacher_view(data, 48)
    assert ds[0][0].shape[-1] == 48 and len(ds) == data.train_size


@pytest.mark.parametrize("profile", ["smoke", "cpu", "cifar", "imagenet"])
def test_every_profile_keeps_the_order_of_epoch_budgets(profile, tmp_path):
    data = None
    if profile in ("cifar", "imagenet"):
        from PIL import Image

        for split in ("train", "val"):
            (tmp_path / split / "a").mkdir(parents=True)
            for i in range(1024 if split == "train" else 1):
                Image.new("RGB", (4, 4)).save(tmp_path / split / "a" / f"{i}.png")
        data = str(tmp_path)
    rows = build_plan("7", profile, data).rows
    e = {r: rows[r].cfg.optim.epochs for r in ("E2", "E3", "E5", "E8")}
    assert e["E2"] < e["E3"] < e["E5"] < e["E8"], e
