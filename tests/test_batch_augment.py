"""The device data path: the decoded cache, batched crop-resize against torchvision, the batched
AutoAugment against the per-image ops, reproducible and resumable device batches."""

from __future__ import annotations

import os
import tarfile
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from assembled.data import DataConfig, DataError
from assembled.data.autoaugment import apply_op, autoaugment_batch, policy
from assembled.data.batch_ops import crop_params, resize_center_crop, resized_crop
from assembled.data.decoded import DecodedImages
from assembled.data.device_batches import DeviceBatches, epoch_order
from assembled.data.folder import ImageFolderDataset
from assembled.data.sources import CACHE_ENV, find_source
from assembled.data.synthetic import SyntheticShapes
from assembled.data.transforms import eval_geometry


def _folder(root, classes=("cat", "dog"), n=4, size=12, seed=0):
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / cls / f"{i:04d}.jpg")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(where))
    return where


def test_decoded_cache_holds_the_loaders_pixels_and_is_reused(tmp_path, cache):
    _folder(tmp_path / "data" / "train")
    _folder(tmp_path / "data" / "test", n=2)
    decoded = DecodedImages(tmp_path / "data", "train")
    direct = ImageFolderDataset(tmp_path / "data" / "train")
    assert len(decoded) == len(direct) == 8 and decoded.classes == direct.classes == ["cat", "dog"]
    for i in range(len(direct)):
        img, label, _ = direct[i]
        assert torch.equal(decoded.images[i], F.pil_to_tensor(img)) and int(decoded.targets[i]) == label
    arrays = sorted(cache.glob("*.npy"))
    stamp = arrays[0].stat().st_mtime_ns
    time.sleep(0.01)
    again = DecodedImages(tmp_path / "data", "train")
    assert torch.equal(again.images, decoded.images) and arrays[0].stat().st_mtime_ns == stamp  # not decoded again
    # a changed file is another key: decoded afresh, never served stale
    os.utime(tmp_path / "data" / "train" / "cat" / "0000.jpg", ns=(1, 1))
    DecodedImages(tmp_path / "data", "train")
    assert len(list(cache.glob("*.npy"))) == 2  # the old train split and the changed one
    assert DecodedImages(tmp_path / "data", "val", limit_per_class=1).targets.tolist() == [0, 1]


def test_archives_are_read_without_extracting(tmp_path, cache):
    src = tmp_path / "src"
    _folder(src / "train", n=3)
    _folder(src / "test", n=2, seed=1)
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        with tarfile.open(data / f"cifar10-{split}.tar.gz", "w:gz") as tar:
            tar.add(src / split, arcname=split)
    assert find_source(data, "val").archive and find_source(data, "train").split_dir == "train"
    from_tar = DecodedImages(data, "train")
    from_dir = ImageFolderDataset(src / "train")
    assert torch.equal(from_tar.images, torch.stack([F.pil_to_tensor(from_dir[i][0]) for i in range(6)]))
    with pytest.raises(DataError, match="no train folder"):
        find_source(tmp_path / "src" / "train", "train")


def test_unreadable_images_are_left_out_and_named(tmp_path, cache):
    _folder(tmp_path / "d" / "train")
    (tmp_path / "d" / "train" / "cat" / "0009.jpg").write_bytes(b"not a jpeg")
    ds = DecodedImages(tmp_path / "d", "train")
    assert len(ds) == 8 and ds.skipped == [str(tmp_path / "d" / "train" / "cat" / "0009.jpg")]
    log = tmp_path / "skipped.txt"
    ds.skip_log = log
    assert log.read_text().strip() == ds.skipped[0]


def test_images_of_several_sizes_are_refused_by_name(tmp_path, cache):
    _folder(tmp_path / "d" / "train", classes=("a",), size=12)
    _folder(tmp_path / "d" / "train", classes=("b",), size=16)
    with pytest.raises(DataError, match="2 sizes"):
        DecodedImages(tmp_path / "d", "train")


@pytest.mark.parametrize("shape", [(32, 32, 32), (40, 40, 32), (37, 53, 24), (120, 96, 48)])
def test_batched_resized_crop_is_torchvisions(shape):
    """Equal to torchvision's antialiased resized_crop computed in float (the same resampling);
    its uint8 kernel rounds in fixed point, at most one level away."""
    h, w, size = shape
    x = torch.randint(0, 256, (24, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(h))
    top, left, ch, cw = crop_params(24, h, w, (0.05, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(1))
    out = resized_crop(x, top, left, ch, cw, size)
    boxes = list(zip(top.tolist(), left.tolist(), ch.tolist(), cw.tolist(), strict=True))
    in_float = torch.stack(
        [F.resized_crop(x[i].float(), *b, [size, size], antialias=True) for i, b in enumerate(boxes)]
    )
    in_uint8 = torch.stack([F.resized_crop(x[i], *b, [size, size], antialias=True) for i, b in enumerate(boxes)])
    # torchvision's float result, rounded: off only where it sits within float error of x.5
    assert (out.float() - in_float.clamp(0, 255)).abs().max() <= 0.5 + 1e-3
    assert (out.int() - in_uint8.int()).abs().max() <= 1


def test_batched_eval_geometry_is_eval_transform():
    x = torch.randint(0, 256, (8, 3, 40, 52), dtype=torch.uint8)
    out = resize_center_crop(x, int(32 / 0.875), 32)
    ref = torch.stack([eval_geometry(32)(x[i]) for i in range(8)])
    assert out.shape == ref.shape and (out.int() - ref.int()).abs().max() <= 1


def test_crop_boxes_follow_torchvisions_rule():
    top, left, h, w = crop_params(4000, 32, 48, (0.35, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 48).all()
    area = (h * w).float() / (32 * 48)
    assert area.min() > 0.33 and area.max() <= 1.0 and 0.5 < area.mean() < 0.8
    # no draw fits a 4 x 100 image at these ratios: the centre crop with the ratio clamped
    top, left, h, w = crop_params(3, 4, 100, (0.9, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert h.tolist() == [4] * 3 and w.tolist() == [5] * 3 and left.tolist() == [47] * 3


@pytest.mark.parametrize("name", ["imagenet", "good"])
def test_batched_autoaugment_applies_each_samples_own_ops(name):
    x = torch.randint(0, 256, (64, 3, 24, 24), dtype=torch.uint8)
    out = autoaugment_batch(x, name, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, replayed per sample
    subs = policy(name)
    choice = torch.randint(len(subs), (64,), generator=g)
    applies = torch.rand(64, 2, generator=g)
    negative = torch.rand(64, 2, generator=g) < 0.5
    changed = 0
    for i in range(64):
        img = x[i]
        for k, (op, prob, level) in enumerate(subs[int(choice[i])]):
            if applies[i, k] < prob and op != "Cutout":  # Cutout's centres come later from the generator
                img = apply_op(img, op, level, -1.0 if negative[i, k] else 1.0)
        if all(op != "Cutout" for op, _, _ in subs[int(choice[i])]):
            assert torch.equal(out[i], img), (i, subs[int(choice[i])])
        changed += int(not torch.equal(out[i], x[i]))
    assert changed > 20


def test_device_batches_are_reproducible_and_follow_the_loaders_order():
    ds = SyntheticShapes(4, 96, 40, "train", seed=0)
    cfg = DataConfig(image_size=32, min_crop_scale=0.35, pipeline="device")
    a = list(DeviceBatches(ds, cfg, torch.device("cpu"), seed=3).epoch(1, 16, 5))
    b = list(DeviceBatches(ds, cfg, torch.device("cpu"), seed=3).epoch(1, 16, 5))
    c = list(DeviceBatches(ds, cfg, torch.device("cpu"), seed=3).epoch(2, 16, 5))
    assert all(torch.equal(x1, x2) and torch.equal(i1, i2) for (x1, _, i1), (x2, _, i2) in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    sampler = torch.utils.data.RandomSampler(ds, num_samples=80, generator=torch.Generator().manual_seed(3001))
    assert torch.cat([idx for _, _, idx in a]).tolist() == list(sampler)
    assert epoch_order(10, 25, 7).tolist() == list(
        torch.utils.data.RandomSampler(range(10), num_samples=25, generator=torch.Generator().manual_seed(7))
    )
    # two ranks: disjoint halves of the same global batches
    r0 = list(DeviceBatches(ds, cfg, torch.device("cpu"), seed=3).epoch(1, 16, 5, (0, 2)))
    r1 = list(DeviceBatches(ds, cfg, torch.device("cpu"), seed=3).epoch(1, 16, 5, (1, 2)))
    for (_, _, i0), (_, _, i1), (_, _, whole) in zip(r0, r1, a, strict=True):
        assert sorted(i0.tolist() + i1.tolist()) == sorted(whole.tolist())


def test_device_pipeline_is_validated_where_the_config_is_read():
    with pytest.raises(ValueError, match="pipeline device"):
        DataConfig(kind="food101", path="/x", pipeline="device")
    with pytest.raises(ValueError, match="per image only"):
        DataConfig(pipeline="device", preprocessing="reid")
