"""Datasets: synthetic determinism, folder errors, CIFAR pickle layout."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from assembled.data import DataConfig, DataError, build_dataset, train_dataset
from assembled.data.synthetic import SyntheticShapes


def test_synthetic_is_deterministic_and_balanced():
    a = SyntheticShapes(5, 40, 32, "train", seed=3)
    b = SyntheticShapes(5, 40, 32, "train", seed=3)
    c = SyntheticShapes(5, 40, 32, "val", seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.images, c.images)
    assert torch.bincount(a.targets).tolist() == [8] * 5
    assert a.images.dtype == torch.uint8 and a.images.shape == (40, 3, 32, 32)
    assert a.images.float().std() > 20  # not blank


def test_synthetic_too_many_classes():
    with pytest.raises(ValueError, match="at most"):
        SyntheticShapes(1000, 10, 16)


def _write_folder(root, classes=("a", "b"), n=3, size=20):
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.random.randint(0, 255, (size, size, 3), dtype=np.uint8)).save(root / cls / f"{i}.jpg")


def test_folder_errors_name_the_path(tmp_path):
    cfg = DataConfig(kind="folder", path=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="does not exist: .*missing"):
        build_dataset(cfg, "train")
    root = tmp_path / "ds"
    _write_folder(root / "train")
    (root / "train" / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class: empty class folder"):
        build_dataset(DataConfig(kind="folder", path=str(root)), "train")
    with pytest.raises(DataError, match="no val / validation / test folder"):
        (root / "train" / "empty_class").rmdir()
        build_dataset(DataConfig(kind="folder", path=str(root)), "val")


def test_unreadable_image_is_a_counted_skip(tmp_path):
    root = tmp_path / "ds"
    _write_folder(root / "train")
    (root / "train" / "a" / "0.jpg").write_bytes(b"not a jpeg")
    ds = train_dataset(DataConfig(kind="folder", path=str(root), image_size=16))
    imgs = [ds[i][0] for i in range(len(ds))]
    assert all(img.shape == (3, 16, 16) for img in imgs)
    assert any(s.endswith("0.jpg") for s in ds.skipped)


def test_cifar_pickle_layout(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 1]}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"x", b"y", b"z"]}, f)
    ds = build_dataset(DataConfig(kind="cifar", path=str(root)), "train")
    assert len(ds) == 20 and ds.classes == ["x", "y", "z"]
    img, label, idx = ds[5]
    assert img.shape == (3, 32, 32) and label == 1 and idx == 5
    (root / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3: missing CIFAR batch file"):
        build_dataset(DataConfig(kind="cifar", path=str(root)), "train")


def test_uint8_crops_normalised_on_the_device_equal_the_per_image_transform():
    """The loader ships uint8 crops; the trainer's conversion gives bitwise the inputs the old
    float transform gave (so no row's numbers move)."""
    import torch

    from assembled.data.transforms import to_model_input, train_transform

    for seed in range(3):
        img = (torch.rand(3, 48, 40) * 255).to(torch.uint8)
        torch.manual_seed(seed)
        shipped = train_transform(32)(img)
        torch.manual_seed(seed)
        reference = train_transform(32, normalised=True)(img)
        assert shipped.dtype == torch.uint8
        assert torch.equal(to_model_input(shipped[None], torch.device("cpu"))[0], reference)


def test_image_extensions_are_torchvisions():
    """folder.py spells torchvision's list out (so checking a folder needs no torch): keep them equal."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from assembled.data.folder import IMG_EXTENSIONS as OURS

    assert OURS == IMG_EXTENSIONS
