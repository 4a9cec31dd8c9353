"""The official AutoAugment (spec section 2.5) against the spec's magnitude rules, level by
level, and its ops on images where the expected pixels follow from those rules by hand."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from assembled.ablation.plan import build_plan
from assembled.data.autoaugment import OfficialAutoAugment, apply_op, magnitude, policy
from assembled.data.transforms import train_transform
from assembled.training import TrainConfig

LEVELS = range(11)
# spec 2.5, written out per level (not computed by the module under test)
POSTERIZE_BITS = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4]
SOLARIZE_THRESHOLD = [0, 25, 51, 76, 102, 128, 153, 179, 204, 230, 256]
ENHANCE_FACTOR = [0.1, 0.28, 0.46, 0.64, 0.82, 1.0, 1.18, 1.36, 1.54, 1.72, 1.9]
ROTATE_DEGREES = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
TRANSLATE_PIXELS = [0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250]


@pytest.mark.parametrize("level", LEVELS)
def test_magnitudes_follow_the_official_rules(level):
    assert magnitude("Posterize", level) == POSTERIZE_BITS[level]
    assert magnitude("Solarize", level) == SOLARIZE_THRESHOLD[level]
    for op in ("Color", "Contrast", "Brightness", "Sharpness"):
        assert magnitude(op, level) == pytest.approx(ENHANCE_FACTOR[level])
    assert magnitude("Rotate", level) == pytest.approx(ROTATE_DEGREES[level])
    assert magnitude("TranslateX", level) == pytest.approx(TRANSLATE_PIXELS[level])
    assert magnitude("ShearY", level) == pytest.approx(0.03 * level)
    assert magnitude("Cutout", level) == 10 * level


def test_the_issue_measured_differences_from_torchvision():
    assert [magnitude("Posterize", lv) for lv in (5, 6, 7, 8)] == [2, 2, 2, 3]  # torchvision: 4-6 bits
    assert magnitude("Solarize", 8) == 204  # torchvision: 28
    assert magnitude("Color", 0) == pytest.approx(0.1)  # torchvision: 1.0 (a no-op)
    assert magnitude("Rotate", 9) == pytest.approx(27)  # torchvision: 30


def _image(value: int | None = None, size: int = 32) -> torch.Tensor:
    if value is not None:
        return torch.full((3, size, size), value, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)


def test_posterize_keeps_the_official_bits():
    out = apply_op(_image(), "Posterize", 8)  # 3 bits: multiples of 32
    assert (out % 32 == 0).all() and len(out.unique()) <= 8
    assert (apply_op(_image(), "Posterize", 2) == 0).all()  # 0 bits


def test_solarize_threshold_and_strength_direction():
    img = _image()
    out = apply_op(img, "Solarize", 8)
    hi = img >= 204
    assert torch.equal(out[hi], 255 - img[hi]) and torch.equal(out[~hi], img[~hi])
    assert torch.equal(apply_op(img, "Solarize", 10), img)  # threshold 256: nothing inverted


def test_colour_ops_blend_by_the_fixed_factor():
    img = _image(200)
    assert (apply_op(img, "Brightness", 0) == 20).all()  # 0.1 * 200 towards black
    # Contrast blends towards H*W/256 (TF port quirk): 1024 / 256 = 4 at 32 px, 196 at 224 px
    assert (apply_op(img, "Contrast", 0) == int(4 + 0.1 * (200 - 4))).all()
    assert (apply_op(_image(200, 224), "Contrast", 0) == int(196 + 0.1 * (200 - 196))).all()
    rgb = torch.stack([torch.full((8, 8), 250), torch.full((8, 8), 10), torch.full((8, 8), 10)]).to(torch.uint8)
    grey = 0.2989 * 250 + 0.587 * 10 + 0.114 * 10  # torchvision's rgb_to_grayscale weights
    out = apply_op(rgb, "Color", 0)  # factor 0.1: nearly grey
    assert abs(int(out[0, 0, 0]) - int(grey + 0.1 * (250 - int(grey)))) <= 1
    assert abs(int(out[1, 0, 0]) - int(grey + 0.1 * (10 - int(grey)))) <= 1


def test_geometric_ops_fill_grey_128():
    img = _image(0, 64)
    rotated = apply_op(img, "Rotate", 9)
    assert rotated[:, 0, 0].tolist() == [128, 128, 128] and rotated[:, 32, 32].tolist() == [0, 0, 0]
    shifted = apply_op(img, "TranslateX", 1)  # 25 px of fill
    assert (shifted == 128).float().mean() == pytest.approx(25 / 64, abs=1e-6)
    sheared = apply_op(img, "ShearX", 9)
    assert (sheared == 128).any()


def test_policy_has_torchvision_sub_policies_with_official_magnitudes():
    ours = policy("imagenet")
    theirs = v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)._policies
    assert len(ours) == len(theirs) == 25
    for a, b in zip(ours, theirs, strict=True):
        assert [(op, p) for op, p, _ in a] == [(op, p) for op, p, _ in b]
    assert len(policy("good")) == 95


def test_transform_applies_ops_and_keeps_uint8():
    torch.manual_seed(0)
    aa = OfficialAutoAugment()
    img = _image()
    outs = [aa(img) for _ in range(50)]
    assert all(o.dtype == torch.uint8 and o.shape == img.shape for o in outs)
    assert sum(not torch.equal(o, img) for o in outs) > 25


def test_default_is_official_and_torchvision_is_an_option(tmp_path):
    def aa_of(tf):
        return [type(t).__name__ for t in tf.transforms if "AutoAugment" in type(t).__name__]

    assert aa_of(train_transform(32, "official")) == ["OfficialAutoAugment"]
    assert aa_of(train_transform(32, "torchvision")) == ["AutoAugment"]
    assert TrainConfig.model_validate({"data": {"autoaugment": True}}).data.autoaugment_policy == "official"
    path = tmp_path / "t.yaml"
    path.write_text(
        "table: t\ntitle: t\nrows:\n"
        "  - {id: A, model: resnet50, autoaugment: true, epochs: 120, input_size: 224}\n"
        "  - {id: B, base: A, autoaugment: torchvision}\n"
    )
    rows = build_plan(str(path), "smoke").rows
    assert rows["A"].cfg.data.autoaugment_policy == "official"
    assert rows["B"].cfg.data.autoaugment_policy == "torchvision"
    assert rows["A"].cfg.config_hash() != rows["B"].cfg.config_hash()
