"""Transfer learning and image retrieval (Tables 10-13): Recall@K, ArcFace, GeM, the stride-1
last stage, the strict backbone loader, the published dataset layouts, and the tables' plans."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from assembled.ablation.plan import build_plan
from assembled.config_io import ConfigError
from assembled.data.config import DataConfig
from assembled.data.datasets import build_dataset
from assembled.data.layouts import detect_kind, samples_for
from assembled.evaluation.retrieval import recall_at_k
from assembled.models import build_model
from assembled.models.retrieval import GeM
from assembled.training import TrainConfig
from assembled.training.losses import arc_margin
from assembled.training.transfer import BackboneMismatch, build_network, load_backbone, set_bn_momentum

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 8, "layers": [1, 1, 1, 1]}


# -- Recall@K ------------------------------------------------------------------------------------
def test_recall_at_k_hand_computed():
    # on a circle: a (0 deg) and b (10 deg) are class 0, c (95 deg) and d (200 deg) class 1
    deg = torch.tensor([0.0, 10.0, 95.0, 200.0]) * math.pi / 180
    emb = torch.stack([deg.cos(), deg.sin()], 1)
    labels = torch.tensor([0, 0, 1, 1])
    # neighbours by angle: a -> b, c, d; b -> a, c, d; c -> b (85), a (95), d (105); d -> c, a, b
    # rank of the first same-class neighbour: a 1, b 1, c 3, d 1
    r = recall_at_k(emb, labels, [1, 2, 3])
    assert r == {1: 0.75, 2: 0.75, 3: 1.0}


def _brute_force(emb: torch.Tensor, labels: torch.Tensor, ks: list[int]) -> dict[int, float]:
    emb = F.normalize(emb.double(), dim=1)
    n = len(labels)
    hits = {k: 0 for k in ks}
    for i in range(n):
        others = [j for j in range(n) if j != i]
        # highest similarity first; equal similarities: lower index first
        ranked = sorted(others, key=lambda j: (-round(float(emb[i] @ emb[j]), 9), j))
        for k in ks:
            hits[k] += any(labels[j] == labels[i] for j in ranked[:k])
    return {k: hits[k] / n for k in ks}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_at_k_matches_brute_force_with_ties_and_blocks(seed):
    g = torch.Generator().manual_seed(seed)
    # few distinct directions: many exact ties in similarity (and duplicates of the query itself)
    emb = torch.randint(-2, 3, (37, 3), generator=g).float()
    emb[emb.abs().sum(1) == 0] = 1.0
    labels = torch.randint(0, 4, (37,), generator=g)
    ks = [1, 2, 4, 8, 100]
    want = _brute_force(emb, labels, ks)
    for block in (1, 5, 64):
        got = recall_at_k(emb, labels, ks, block=block)
        assert got == pytest.approx(want), (block, got, want)


def test_recall_excludes_the_query_itself():
    emb = torch.eye(3)  # every image is only similar to itself
    assert recall_at_k(emb, torch.tensor([0, 1, 2]), [1, 2]) == {1: 0.0, 2: 0.0}


# -- ArcFace, GeM ------------------------------------------------------------------------------
def test_arcface_without_margin_is_scaled_cosine():
    cos = torch.rand(6, 5) * 2 - 1
    y = torch.randint(0, 5, (6,))
    assert torch.allclose(arc_margin(cos, y, 30.0, 0.0), 30.0 * cos, atol=1e-5)


def test_arcface_margin_on_the_target_angle_only():
    theta = torch.tensor([[0.3, 1.0, 2.0]])
    y = torch.tensor([0])
    out = arc_margin(theta.cos(), y, 10.0, 0.5)
    assert out[0, 0].item() == pytest.approx(10 * math.cos(0.3 + 0.5), abs=1e-5)
    assert out[0, 1:].tolist() == pytest.approx((10 * theta[0, 1:].cos()).tolist(), abs=1e-5)
    # past pi - m the target falls back to cos - m sin(m), which keeps decreasing with the angle
    far = arc_margin(torch.tensor([[math.cos(3.0), 0.0]]), y, 1.0, 0.5)
    assert far[0, 0].item() == pytest.approx(math.cos(3.0) - 0.5 * math.sin(0.5), abs=1e-5)


def test_gem_p1_is_average_pooling_and_large_p_tends_to_max():
    x = torch.rand(2, 4, 5, 5) + 0.01
    assert torch.allclose(GeM(p=1.0)(x), x.mean((2, 3)), atol=1e-6)
    assert torch.allclose(GeM(p=60.0)(x), x.amax((2, 3)), rtol=0.1)
    assert GeM().p.requires_grad and GeM().p.item() == 3.0


# -- the stride-1 last stage --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet50", "resnet50d_sk", "resnet50d_sk_bl", "assemble_resnet50"])
def test_last_stride_1_keeps_every_weight_key_and_doubles_the_map(name):
    a = build_model({"name": name, **TINY}, 5)
    b = build_model({"name": name, **TINY, "last_stride": 1}, 5)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    a.eval(), b.eval()
    x = torch.rand(1, 3, 64, 64)
    fa, fb = a.stages(a.stem(x)), b.stages(b.stem(x))
    assert fb.shape[-1] == 2 * fa.shape[-1]


# -- the strict backbone loader -----------------------------------------------------------------
def _checkpoint(tmp_path: Path, model: dict, classes: int = 7) -> str:
    net = build_model(model, classes)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.5)
    path = tmp_path / "backbone.pt"
    torch.save({"model": net.state_dict()}, path)
    return str(path)


def _transfer_cfg(model: dict, checkpoint: str, **head) -> TrainConfig:
    return TrainConfig.model_validate(
        {"model": model, "head": head or {}, "transfer": {"backbone": "x", "checkpoint": checkpoint}}
    )


def test_backbone_loads_everything_but_the_head_and_restarts_bn_stats(tmp_path):
    model = {"name": "resnet50d", **TINY}
    ckpt = _checkpoint(tmp_path, model)
    cfg = _transfer_cfg(model, ckpt)
    net = build_network(cfg, 3)  # another class count: only the head differs
    load_backbone(net, cfg.transfer)
    saved = torch.load(ckpt)["model"]
    conv = next(k for k in saved if k.endswith("conv1.weight"))
    assert torch.equal(net.state_dict()[conv], saved[conv])
    assert net.fc.out_features == 3
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))  # reset, as the official


def test_backbone_into_a_retrieval_net_with_stride_1(tmp_path):
    ckpt = _checkpoint(tmp_path, {"name": "resnet50d_sk", **TINY})
    cfg = _transfer_cfg({"name": "resnet50d_sk", **TINY, "last_stride": 1}, ckpt, kind="embedding", dim=16)
    net = build_network(cfg, 4)
    load_backbone(net, cfg.transfer)
    net.eval()
    assert net.embed(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_backbone_mismatch_names_the_layers(tmp_path):
    ckpt = _checkpoint(tmp_path, {"name": "resnet50", **TINY})
    cfg = _transfer_cfg({"name": "resnet50d", **TINY}, ckpt)
    with pytest.raises(BackboneMismatch, match=r"stem\.\d+\.weight") as e:
        load_backbone(build_network(cfg, 3), cfg.transfer)
    assert "lacks" in str(e.value)


def test_bn_momentum_rule():
    net = build_model({"name": "resnet50", **TINY}, 3)
    cfg = _transfer_cfg({"name": "resnet50", **TINY}, "unused")
    # max(1 - 10/s, 0.9) in TF's convention is PyTorch's min(10/s, 0.1): Food-101 s = 295.9 -> 0.966
    assert set_bn_momentum(net, cfg.transfer, 295) == pytest.approx(10 / 295)
    assert set_bn_momentum(net, cfg.transfer, 31) == pytest.approx(0.1)


def test_new_fields_keep_old_identities():
    """Defaults of the transfer fields leave a classification run's config hash as it was."""
    cfg = TrainConfig()
    dumped = cfg.model_dump(mode="json")
    for key in ("head", "transfer"):
        assert key in dumped
    plain = TrainConfig.model_validate({"head": {"kind": "classifier"}})
    assert plain.config_hash() == cfg.config_hash()
    assert TrainConfig.model_validate({"head": {"kind": "embedding"}}).config_hash() != cfg.config_hash()


# -- published layouts -------------------------------------------------------------------------
def _jpeg(path: Path, shade: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (shade, 50, 200)).save(path)


def test_food101_layout_through_torchvision(tmp_path):
    base = tmp_path / "food-101"
    meta = {"train": {"apple_pie": ["apple_pie/1", "apple_pie/2"], "ramen": ["ramen/3"]}}
    meta["test"] = {"apple_pie": ["apple_pie/4"], "ramen": ["ramen/5"]}
    (base / "meta").mkdir(parents=True)
    for split, d in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(d))
        for rels in d.values():
            for rel in rels:
                _jpeg(base / "images" / f"{rel}.jpg")
    for root in (tmp_path, base):  # the dataset's folder or the one holding it
        assert detect_kind(root) == "food101"
        train, classes = samples_for("food101", root, "train", False, None)
        assert classes == ["apple_pie", "ramen"] and sorted(y for _, y in train) == [0, 0, 1]
    ds = build_dataset(DataConfig(kind="food101", path=str(base)), "val")
    img, label, index = ds[1]
    assert len(ds) == 2 and label == 1 and index == 1


def test_oxford_pets_and_aircraft_layouts(tmp_path):
    pets = tmp_path / "oxford-iiit-pet"
    lines = {"trainval": ["Abyssinian_1 1 1 1", "beagle_2 2 2 1"], "test": ["Abyssinian_3 1 1 1"]}
    for split, rows in lines.items():
        (pets / "annotations").mkdir(parents=True, exist_ok=True)
        (pets / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")
        for r in rows:
            _jpeg(pets / "images" / f"{r.split()[0]}.jpg")
    assert detect_kind(pets) == "oxford_pets"
    assert [y for _, y in samples_for("oxford_pets", pets, "train", False, None)[0]] == [0, 1]

    air = tmp_path / "fgvc-aircraft-2013b"
    (air / "data").mkdir(parents=True)
    (air / "data" / "variants.txt").write_text("707-320\nA320\n")
    (air / "data" / "images_variant_trainval.txt").write_text("0001 707-320\n0002 A320\n")
    (air / "data" / "images_variant_test.txt").write_text("0003 A320\n")
    for i in (1, 2, 3):
        _jpeg(air / "data" / "images" / f"000{i}.jpg")
    assert detect_kind(air) == "fgvc_aircraft"
    val, classes = samples_for("fgvc_aircraft", air, "val", False, None)
    assert classes == ["707-320", "A320"] and [y for _, y in val] == [1]


def test_cub_zero_shot_split_and_sop(tmp_path):
    cub = tmp_path / "CUB_200_2011"
    cub.mkdir()
    (cub / "classes.txt").write_text("\n".join(f"{c} {c:03d}.bird" for c in range(1, 5)) + "\n")
    images, labels, split = [], [], []
    for i in range(1, 9):
        c = (i - 1) // 2 + 1  # two images of each of 4 classes
        rel = f"{c:03d}.bird/img{i}.jpg"
        _jpeg(cub / "images" / rel, shade=20 * i)
        images.append(f"{i} {rel}")
        labels.append(f"{i} {c}")
        split.append(f"{i} {i % 2}")
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    (cub / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(split) + "\n")
    assert detect_kind(tmp_path) == "cub200"
    train, classes = samples_for("cub200", tmp_path, "train", True, None)
    test, test_classes = samples_for("cub200", tmp_path, "val", True, None)
    # classes 1-2 train (every image), 3-4 are query and gallery, labels from 0
    assert classes == ["001.bird", "002.bird"] and len(train) == 4 and {y for _, y in train} == {0, 1}
    assert test_classes == ["003.bird", "004.bird"] and len(test) == 4 and {y for _, y in test} == {0, 1}
    assert len(samples_for("cub200", tmp_path, "train", False, None)[0]) == 4  # the published split

    sop = tmp_path / "sop"
    for name, ids in (("Ebay_train.txt", (1, 1, 2)), ("Ebay_test.txt", (7, 9, 9))):
        rows = ["image_id class_id super_class_id path"]
        for i, c in enumerate(ids):
            _jpeg(sop / "bike_final" / f"{c}_{i}.JPG")
            rows.append(f"{i + 1} {c} 1 bike_final/{c}_{i}.JPG")
        (sop / name).write_text("\n".join(rows) + "\n")
    assert detect_kind(sop) == "sop"
    test, classes = samples_for("sop", sop, "val", True, None)
    assert classes == ["7", "9"] and [y for _, y in test] == [0, 1, 1]


def test_missing_layout_is_one_clear_error(tmp_path):
    from assembled.data.folder import DataError

    with pytest.raises(DataError, match="not a Food101 layout"):
        samples_for("food101", tmp_path, "train", False, None)


def test_synthetic_fine_grained_zero_shot_halves():
    train = build_dataset(DataConfig(num_classes=8, train_size=40, source_size=16, split="zero_shot"), "train")
    val = build_dataset(
        DataConfig(num_classes=8, val_size=40, source_size=16, split="zero_shot", fine_grained=True), "val"
    )
    assert train.num_classes == 4 and set(train.targets.tolist()) == {0, 1, 2, 3}
    assert val.classes == ["class_004", "class_005", "class_006", "class_007"]
    from assembled.data.synthetic import class_attributes

    assert set(class_attributes(32, fine_grained=True)[:, 0].tolist()) <= {0, 1}  # two shapes only


# -- the tables -------------------------------------------------------------------------------
def test_transfer_tables_plan_with_backbones_from_other_tables():
    plan = build_plan("10", "smoke")
    f9, f4 = plan.rows["F9"], plan.rows["F4"]
    assert f9.backbone == "table07:E11" and plan.rows["table07:E11"].teacher == "table07:E6"
    assert f9.cfg.transfer.backbone == plan.rows["table07:E11"].cfg.config_hash()
    assert not f9.cfg.model.dropblock  # E11's DropBlock is not fine-tuning's
    assert plan.rows["F10"].cfg.model.dropblock
    assert plan.rows["F10"].cfg.reg.dropblock_start_keep_prob == 0.9
    assert f4.cfg.data.fine_grained and f4.cfg.optim.weight_decay == 0.001
    # the imported backbone row has the identity its own table gives it (so its runs are shared)
    t6 = build_plan("6", "smoke")
    assert plan.rows["table06:T5"].cfg.config_hash() == t6.rows["T5"].cfg.config_hash()
    s = build_plan("12", "smoke")
    s0 = s.rows["S0"].cfg
    assert s0.head.kind == "embedding" and s0.head.dim == 1536 * 8 // 64 and s0.data.split == "zero_shot"
    assert s0.model.last_stride == 1
    for table in ("11", "13"):
        assert build_plan(table, "smoke").rows


def test_transfer_table_without_data_for_its_dataset_says_how(tmp_path):
    with pytest.raises(ConfigError, match="profile cifar has no data for dataset 'food101'"):
        build_plan("10", "cifar")


# -- end to end: real local Ray, real MLflow store --------------------------------------------
@pytest.mark.slow
def test_transfer_tables_run_and_share_each_backbone(ablation_env):
    """Table 12 then Table 10 (smoke, two rows each): every S row logs Recall@1, every F row
    top-1 and mCE, and a backbone both use (table 7's E0, table 6's T2) is trained once."""
    import shutil

    from assembled.ablation.runner import run_ablation

    from .conftest import children

    tmp, root, client = ablation_env
    for n in ("06", "07", "10", "12"):
        shutil.copy(ROOT / "ablations" / f"table{n}.yaml", root / f"table{n}.yaml")
    first = run_ablation("12", "smoke", workdir=tmp / "runs", ablations_dir=root, rows=["S0", "S2"])
    assert sorted(first.ran) == ["S0", "S2", "table06:T2", "table07:E0"] and not first.failed
    s_runs = {r.data.tags["row"]: r for r in children(client, "table12")}
    for rid in ("S0", "S2"):
        assert s_runs[rid].info.status == "FINISHED"
        assert 0 <= s_runs[rid].data.metrics["recall_at_1"] <= 100
        backbone = s_runs["table07:E0" if rid == "S0" else "table06:T2"]
        assert s_runs[rid].data.tags["backbone_hash"] == backbone.data.tags["config_hash"]
        assert s_runs[rid].data.tags["backbone_run"] == backbone.info.run_id
    # in-process: the backbones come from the store, whichever executor trained them
    second = run_ablation("10", "smoke", workdir=tmp / "runs", ablations_dir=root, rows=["F0", "F2"], executor="local")
    assert sorted(second.ran) == ["F0", "F2"], second.ran  # the backbones were not trained again
    assert sorted(second.skipped) == ["table06:T2", "table07:E0"]
    f_runs = {r.data.tags["row"]: r for r in children(client, "table10")}
    for rid in ("F0", "F2"):
        assert {"top1", "mce"} <= set(f_runs[rid].data.metrics)
    backbone_runs = [r for e in ("table10", "table12") for r in children(client, e) if ":" in r.data.tags["row"]]
    assert sorted(r.data.tags["row"] for r in backbone_runs) == ["table06:T2", "table07:E0"]
