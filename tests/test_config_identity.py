"""Run identity is a contract with every store that holds finished runs: a refactor of the
config schema (moving a field, marking identity on the schema instead of in ``config_hash``)
must leave the hash of every shipped row under every shipped profile as it was, or every
finished row would train again. ``tests/data/config_hashes.json`` holds them; after a change
that is meant to alter an identity, regenerate it (``python -m tests.test_config_identity``)
and say in the commit which rows retrain and why."""

from __future__ import annotations

import json

import pytest

from assembled.ablation.profiles import load_profiles, train_config
from assembled.ablation.spec import load_table
from assembled.training.config import TrainConfig

from .conftest import ROOT

GOLDEN = ROOT / "tests" / "data" / "config_hashes.json"


def current_hashes() -> dict[str, str]:
    """``profile/table/row`` -> (config hash, training hash) for every shipped non-transfer row."""
    profiles = load_profiles(ROOT / "ablations" / "profiles.yaml")
    for profile in profiles.values():  # a data folder named relative to the checkout: not the checkout's place
        for data in (profile.data, *profile.datasets.values()):
            if "path" in data:
                data["path"] = "/data/" + data["path"].rstrip("/").rsplit("/", 1)[-1]
    out = {}
    for path in sorted((ROOT / "ablations").glob("table*.yaml")):
        table, rows = load_table(path)
        for name, profile in profiles.items():
            for row in rows:
                if row.is_transfer:
                    continue
                cfg = train_config(row, table, profile)
                out[f"{name}/{path.stem}/{row.id}"] = f"{cfg.config_hash()} {cfg.training_hash()}"
    return out


def test_every_shipped_row_keeps_its_identity():
    golden = json.loads(GOLDEN.read_text())
    now = current_hashes()
    changed = sorted(k for k in golden.keys() & now.keys() if golden[k] != now[k])
    assert not changed, f"{len(changed)} identities changed (their finished runs would retrain): {changed[:10]}"
    assert now.keys() == golden.keys(), sorted(now.keys() ^ golden.keys())[:10]


# configs no shipped row makes (transfer, a retrieval head, fields added later set away from their
# defaults, fields that are never identity set), hashed by the implementation before identity
# moved onto the schema (commit 6e4c55c): config hash, training hash
OFF_DEFAULT = {
    "transfer+head": (
        {"model": "resnet50d", "transfer": {"backbone": "abc123", "checkpoint": "/tmp/x.pt"},
         "head": {"kind": "embedding", "dim": 512, "loss": "softmax"}},
        "707d7c889f074db9 9eeb6e470392d19f",
    ),
    "fp16+syncbn+dropblock-start+fc-bias": (
        {"amp_dtype": "fp16", "sync_bn": True, "reg": {"dropblock_start_keep_prob": 0.9},
         "optim": {"decay_fc_bias": True}},
        "3adb6bbbeb1f9a8d 03c59ac3cf986c69",
    ),
    "data-flags": (
        {"data": {"kind": "synthetic", "autoaugment": True, "autoaugment_policy": "good", "cache": True,
                  "pipeline": "device", "epoch_size": 512, "num_workers": 3, "fine_grained": True},
         "device": "cpu", "threads": 1, "eval_every": 3, "reg": {"teacher_logits": "/tmp/t.pt", "kd_temperature": 1.0}},
        "9a6013e53b348a73 2789ad3252a1203a",
    ),
}  # fmt: skip


def test_configs_off_the_shipped_rows_keep_their_identity():
    for name, (config, hashes) in OFF_DEFAULT.items():
        cfg = TrainConfig.model_validate(config)
        assert f"{cfg.config_hash()} {cfg.training_hash()}" == hashes, name
    # what is never identity changes no hash; what is, does
    base = TrainConfig.model_validate(OFF_DEFAULT["data-flags"][0])
    same = base.model_copy(update={"threads": 8, "eval_every": 1})
    assert same.config_hash() == base.config_hash()
    moved = base.model_copy(update={"data": base.data.model_copy(update={"autoaugment_policy": "official"})})
    assert moved.config_hash() != base.config_hash()


def test_the_device_type_and_precision_are_part_of_a_run():
    """A GPU run in bf16 and a CPU run in FP32 train different numbers (the issue: they counted
    as one finished row); the card a run used does not, nor does naming what was the default."""
    cpu = TrainConfig(device="cpu")
    assert cpu.compute() == "cpu/fp32" and cpu.config_hash() == TrainConfig().config_hash()  # old runs: auto
    gpu = TrainConfig(device="cuda")
    assert gpu.compute() == "cuda/bf16" and gpu.config_hash() != cpu.config_hash()
    assert TrainConfig(device="cuda:3").config_hash() == gpu.config_hash()
    assert TrainConfig(device="cuda", amp_dtype="fp16").compute() == "cuda/fp16"
    fp32 = TrainConfig(device="cuda", amp=False)
    assert fp32.compute() == "cuda/fp32" and len({fp32.config_hash(), gpu.config_hash(), cpu.config_hash()}) == 3
    assert TrainConfig(device="cpu", amp=True).compute() == "cpu/bf16"


def test_a_profile_names_where_its_trials_train():
    """GPU profiles' trials are CUDA runs, CPU profiles' CPU runs, on any machine (the issue:
    ``--executor local`` on a GPU machine trained CPU profiles on CUDA)."""
    profiles = load_profiles(ROOT / "ablations" / "profiles.yaml")
    table, rows = load_table(ROOT / "ablations" / "table06.yaml")
    want = {"cpu": "cpu/fp32", "cifar-cpu": "cpu/fp32", "cifar": "cuda/bf16", "imagenet": "cuda/bf16"}
    for name in want:
        cfg = train_config(rows[0], table, profiles[name])
        assert cfg.compute() == want[name], name


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(current_hashes(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


def test_the_model_is_a_typed_config_whatever_it_was_given_as():
    """A name, a dict with a name and overrides, or every switch spelled out: one typed
    ModelConfig inside (no call site resolves it again), one identity; a config written to a
    checkpoint or MLflow reads back equal, and a checkpoint's older string form still reads."""
    from assembled.models.config import ModelConfig

    named = TrainConfig(model="resnet50d")
    assert isinstance(named.model, ModelConfig) and named.model.deep_stem and named.model.name == "resnet50d"
    spelled = TrainConfig(model={"depth": 50, "deep_stem": True, "avg_down": True})
    assert spelled.model.name is None and spelled.config_hash() == named.config_hash()
    assert TrainConfig.model_validate(named.model_dump(mode="json")) == named
    off = TrainConfig(model={"name": "resnet50d", "deep_stem": False})
    assert not off.model.deep_stem and off.model.avg_down and off.config_hash() != named.config_hash()
    with pytest.raises(ValueError, match="unknown model 'resnet51'"):
        TrainConfig(model="resnet51")
