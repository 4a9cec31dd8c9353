"""Profiles map the paper's settings onto a budget: data, resolution, widths, epochs, batch,
evaluation depth and trial resources. Epochs scale proportionally so the rows' relative budgets
(120 / 200 / 270 / 600) are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config_io import ConfigError, check_part, describe, read_yaml
from ..data.config import DataConfig
from ..evaluation.config import EvalConfig
from ..models.names import resolve_config
from ..runner.resources import Resources
from ..training.config import OptimConfig, TrainConfig
from .spec import ResolvedRow, Table


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    data: dict[str, Any] = Field(default_factory=dict, description="DataConfig fields")
    paper_train_size: int = 224
    image_size: int = Field(224, description="the crop that stands for the paper's 224")
    max_image_size: int | None = Field(None, description="cap for large reference inputs (EfficientNet B7 600)")
    size_multiple: int | None = Field(
        None,
        ge=1,
        description="crops round to a multiple of this (default 8 for ResNets, 2 for the others); CIFAR-size "
        "profiles take 4 so that the paper's 256 stays 256/224 of 224 (36 px for 32)",
    )
    train_references: bool = Field(
        True,
        description="train a table's reference rows (the EfficientNets of Table 7); false: they show the paper's "
        "numbers only, for a budget that cannot train them",
    )
    epoch_scale: float = Field(1.0, gt=0)
    min_epochs: int = 1
    optim: dict[str, Any] = Field(default_factory=dict)
    resnet: dict[str, Any] = Field(default_factory=dict, description="ResNet overrides (width, layers, ...)")
    mobilenet: dict[str, Any] = Field(default_factory=dict)
    efficientnet: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvalConfig = Field(default_factory=EvalConfig, description="EvalConfig fields")
    resources: Resources = Resources()
    max_failures: int = 2
    repeats: int = Field(1, ge=1, le=100, description="seeds per row (a table or --repeats overrides)")
    eval_every: int = Field(1, ge=1, description="validation top-1 every N epochs (always after the last)")
    channels_last: bool | None = Field(
        None,
        description="NHWC memory layout (default: on for CUDA only); on a CPU it trained the 1/8-width ResNets "
        "1.1-1.45x faster (benchmarks/layout.py)",
    )
    compile: Literal["none", "inductor", "eager"] = Field(
        "none", description="torch.compile every trial's network (TrainConfig.compile); inductor on GPUs"
    )
    search: dict[str, Any] | None = Field(None, description="Optuna search space for rows without their own")
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="transfer rows' data by dataset name (food101, sop, ...; '*' for any other): DataConfig fields",
    )
    teachers: dict[str, str] = Field(
        default_factory=dict,
        description="KD teacher substitutes in this profile (row -> row), for teachers it cannot train well",
    )


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """Every profile of the file; a relative data path is relative to the file's folder."""
    path = Path(path)
    raw = read_yaml(path)
    out = {}
    for name, body in raw.items():
        try:
            profile = Profile.model_validate(body or {})
        except ValidationError as e:
            raise ConfigError(describe(e, f"{path}: profile {name}", first=True)) from None
        _check_overrides(profile, f"{path}: profile {name}")
        for data in (profile.data, *profile.datasets.values()):
            if data.get("path") and not Path(data["path"]).is_absolute():
                data["path"] = str((path.parent / data["path"]).resolve())
        out[name] = profile
    return out


def _check_overrides(profile: Profile, where: str) -> None:
    """The profile's partial sub-configs, checked where the file is read and named as every config
    error is (``file: profile: key``), not first when a row's config is built from them."""
    check_part(OptimConfig, profile.optim, where, "optim")
    check_part(DataConfig, profile.data, where, "data")
    for name, data in profile.datasets.items():
        check_part(DataConfig, data, where, f"datasets.{name}")
    try:
        resolve_config({"name": "resnet50", **profile.resnet})
    except (ValueError, ValidationError) as e:
        raise ConfigError(describe(e, where, "resnet", first=True)) from None


def scaled_size(paper: int, profile: Profile, multiple: int = 8) -> int:
    multiple = profile.size_multiple or multiple
    size = paper * profile.image_size / profile.paper_train_size
    if profile.max_image_size:
        size = min(size, profile.max_image_size)
    return max(multiple, int(round(size / multiple)) * multiple)


def train_config(
    row: ResolvedRow,
    table: Table,
    profile: Profile,
    data_override: str | None = None,
    seed: int = 0,
    data_base: dict[str, Any] | None = None,
) -> TrainConfig:
    """``data_base``: the data the row trains on instead of the profile's (a transfer row's dataset)."""
    cfg_model = resolve_config(row.model)
    overrides = {"resnet": profile.resnet, "mobilenet_v1": profile.mobilenet, "efficientnet": profile.efficientnet}[
        cfg_model.arch
    ]
    model = row.model if isinstance(row.model, dict) else {"name": row.model}
    model = {**model, **overrides}
    # ResNets train at 224 and evaluate at the row's size; reference models at their native size
    # BigLittle merges need even maps down the ResNet: multiples of 8; other families keep their steps
    multiple = 8 if cfg_model.arch == "resnet" else 2
    train_px = scaled_size(row.input_size if row.reference else row.train_size, profile, multiple)
    eval_px = scaled_size(row.input_size, profile, multiple)
    aa = row.autoaugment
    base = profile.data if data_base is None else data_base
    data = {**base, "image_size": train_px, "eval_size": eval_px, "autoaugment": bool(aa)}
    if isinstance(aa, str):
        data["autoaugment_policy"] = aa
    if "num_workers" not in data and profile.resources.gpu > 0:  # keep a GPU fed: decode on the trial's CPUs
        data["num_workers"] = max(1, int(profile.resources.cpu) - 1)
    data.setdefault("source_size", max(train_px, eval_px))
    data["source_size"] = max(data["source_size"], train_px, eval_px)
    if data_override:
        data |= {"kind": data.get("kind") if data.get("kind") not in (None, "synthetic") else "folder"}
        data["path"] = str(data_override)
    epochs = max(profile.min_epochs, round(row.epochs * profile.epoch_scale))
    optim = {**profile.optim, "epochs": epochs, "schedule": table.schedule, **row.optim}
    reg = dict(row.reg)  # with reg.kd_temperature on a KD row (spec._check_kd)
    threads = profile.resources.threads or max(1, int(profile.resources.cpu))
    sync_bn = profile.resources.sync_bn and profile.resources.workers > 1
    try:
        return TrainConfig.model_validate(
            {
                "model": model,
                "data": data,
                "optim": optim,
                "reg": reg,
                "seed": seed,
                # where it trains is the profile's: its runs' identity says so (TrainConfig.compute)
                "device": "cuda" if profile.resources.gpu > 0 else "cpu",
                "threads": threads,
                "sync_bn": sync_bn,
                "eval_every": profile.eval_every,
                "channels_last": profile.channels_last,
                "compile": profile.compile,
            }
        )
    except ValidationError as e:
        raise ConfigError(describe(e, f"row {row.id}", first=True)) from None
