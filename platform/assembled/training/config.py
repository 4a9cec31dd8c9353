"""Everything one training run needs, validated; the trainer reads nothing else.

The paper's values are the defaults where they are portable (momentum 0.9, wd 1e-4, lr 0.1
per 256 images = 0.4 at 1024, 5 warm-up epochs, cosine, LS 0.1 when on, mixup alpha 0.2,
DropBlock keep_prob 1.0 -> 0.9).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.config import DataConfig
from ..identity import NEVER, UNLESS_DEFAULT, identity
from ..models.config import ModelConfig
from ..models.names import resolve_config


class OptimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=2)
    base_lr: float = Field(0.1, gt=0, description="lr per 256 images; scaled linearly with batch_size")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0)
    decay_fc_bias: bool = Field(
        False,
        json_schema_extra=UNLESS_DEFAULT,
        description="decay the classifier's bias too, as the official code (its rule: everything but BN); "
        "off: biases and BN excluded (Goyal et al. 2017)",
    )
    schedule: Literal["cosine", "piecewise"] = "cosine"
    warmup_epochs: float = Field(5.0, ge=0)
    milestones: tuple[float, ...] = Field(
        (0.25, 0.5, 2 / 3, 0.75), description="piecewise: fractions of training (30/60/80/90 of 120 epochs)"
    )
    gamma: float = Field(0.1, gt=0, lt=1, description="piecewise decay factor")
    accumulation_steps: int = Field(
        1,
        ge=1,
        json_schema_extra=UNLESS_DEFAULT,  # BatchNorm sees micro-batches: part of what is trained
        description="micro-batches a step's batch is split into, gradients summed before one optimiser step: the "
        "paper's global batch on a card it does not fit (BatchNorm statistics are then per micro-batch)",
    )

    @model_validator(mode="after")
    def _whole_micro_batches(self) -> OptimConfig:
        if self.batch_size % self.accumulation_steps:
            raise ValueError(
                f"optim.batch_size {self.batch_size} does not split into {self.accumulation_steps} equal micro-batches"
            )
        return self

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256


class RegConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_smoothing: float = Field(0.0, ge=0, lt=1)
    mixup_alpha: float = Field(0.0, ge=0)
    mixup_type: Literal[1, 2] = 1
    dropblock_keep_prob: float = Field(0.9, gt=0, le=1, description="final keep_prob of the linear 1.0 -> kp schedule")
    dropblock_start_keep_prob: float = Field(
        1.0,
        gt=0,
        le=1,
        description="first keep_prob of the schedule (fine-tuning: 0.9, as the FGVC script)",
        json_schema_extra=UNLESS_DEFAULT,
    )
    kd_temperature: float = Field(0.0, ge=0, description="0 disables distillation")
    teacher_logits: str | None = Field(
        None, description="path of cached teacher logits (.pt) for KD", json_schema_extra=NEVER
    )  # a local cache path; the temperature and the teacher's identity stay in
    teacher: str | None = Field(None, description="identity of the teacher (its config hash): part of this run's")


class HeadConfig(BaseModel):
    """What the network ends in: the classifier, or the retrieval embedding (models/retrieval.py)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["classifier", "embedding"] = "classifier"
    dim: int = Field(1536, ge=2, description="embedding size (the paper's 1536)")
    loss: Literal["arcface", "softmax"] = "arcface"
    arc_margin: float = Field(0.3, ge=0, lt=3.14, description="the paper's 0.3")
    arc_scale: float = Field(80.0, gt=0, description="not stated in the paper; the official flag's default")
    gem_p: float = Field(3.0, gt=0, description="GeM's initial p")
    recall_k: tuple[int, ...] = Field((1, 2, 4, 8), description="Recall@K reported (SOP: 1, 10, 100, 1000)")


class TransferConfig(BaseModel):
    """Fine-tuning from a trained backbone (the official WarmStartHook): every layer but the head
    loaded strictly; BN statistics restart (the official restores trainable variables only)."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field(description="identity of the backbone: its run's config hash or its checkpoint's sha256")
    checkpoint: str | None = Field(
        None, description="local checkpoint path, filled in when the trial starts", json_schema_extra=NEVER
    )
    bn_stats: Literal["reset", "keep"] = Field("reset", description="reset: as the official fine-tuning")
    bn_momentum: Literal["auto"] | float | None = Field(
        "auto",
        description="auto: the paper's max(1 - 10/s, 0.9) with s the steps per epoch (PyTorch's momentum is 1 minus "
        "it); a number sets PyTorch's momentum; null keeps the model's",
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelConfig = Field(
        default_factory=lambda: resolve_config("resnet50"),
        description="a registered name, a dict of switches (with or without a name) or a ModelConfig; kept typed",
    )
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    reg: RegConfig = RegConfig()
    seed: int = 0
    device: str = Field(
        "auto",
        description="auto | cpu | cuda | cuda:N; its type and the precision are part of a run's identity (compute())",
        json_schema_extra=NEVER,
    )
    amp: bool | None = Field(None, description="mixed precision (autocast); default on for CUDA")
    amp_dtype: Literal["bf16", "fp16"] = Field(
        "bf16",
        description="fp16 (with a gradient scaler) for GPUs without bf16, e.g. the paper's P40 / V100",
        json_schema_extra=UNLESS_DEFAULT,
    )
    channels_last: bool | None = Field(None, description="default on for CUDA")
    compile: Literal["none", "inductor", "eager"] = Field(
        "none",
        description="torch.compile the network: inductor generates kernels (GPU speed); eager only traces "
        "(checks for graph breaks and recompiles quickly). Numbers agree with the uncompiled network's to float "
        "rounding: not part of a run's identity (tag compile says which)",
        json_schema_extra=NEVER,
    )
    eval_every: int = Field(1, ge=1, json_schema_extra=NEVER)
    threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU", json_schema_extra=NEVER)
    sync_bn: bool = Field(
        False,
        description="data-parallel trials: BatchNorm statistics over the global batch",
        json_schema_extra=UNLESS_DEFAULT,
    )
    head: HeadConfig = Field(HeadConfig(), json_schema_extra=UNLESS_DEFAULT)
    transfer: TransferConfig | None = Field(
        None, description="fine-tune from a trained backbone", json_schema_extra=UNLESS_DEFAULT
    )

    @field_validator("model", mode="before")
    @classmethod
    def _resolve_model(cls, v: Any) -> ModelConfig:
        return resolve_config(v)  # a name's switches under the keys given; raises with the offending key

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        """Combinations that would crash inside a trial (where Ray would retry them) fail here."""
        B = self.optim.batch_size
        if self.reg.mixup_alpha > 0 and self.reg.mixup_type == 2 and B % 2:
            raise ValueError(f"mixup_type 2 pairs the two halves of a batch: optim.batch_size must be even, got {B}")
        if self.head.kind == "embedding":
            if self.model.arch != "resnet":
                raise ValueError("head.kind embedding (image retrieval) needs a ResNet model")
            if self.head.loss == "arcface" and self.reg.mixup_alpha > 0:
                raise ValueError("head.loss arcface puts its margin on one class per image: it cannot take mixup")
        if self.data.kind == "synthetic" and self.data.train_size < B:
            raise ValueError(f"data.train_size {self.data.train_size} is smaller than one batch (optim.batch_size {B})")
        return self

    def config_hash(self) -> str:
        """Identity of what is trained: everything except where/how fast it runs."""
        return _digest(self._identity())

    def training_hash(self) -> str:
        """Identity of the training alone: two configs that differ only in the evaluation crop
        train the same weights (validation reads the model, never changes it or a random
        stream), so one training serves both (Table 6's T4 is T3 evaluated at 256 px)."""
        d = self._identity()
        d["data"].pop("eval_size", None)
        if self.data.kind != "synthetic":  # the rendering size of synthetic images; real ones are read as they are
            d["data"].pop("source_size", None)
        return _digest(d)

    def _identity(self) -> dict[str, Any]:
        """The fields the schema marks as identity (``identity.py``), the model by its resolved
        identity (a name and the dict it stands for are one model), and what it computes on unless
        that is a CPU in FP32 (every run made before this entry was)."""
        d = identity(self)
        d["model"] = self.model.identity()
        if self.compute() not in ("cpu/fp32", "auto"):
            d["compute"] = self.compute()
        return d

    def compute(self) -> str:
        """``device type/precision`` of training and evaluation, e.g. ``cuda/bf16``: a GPU run in
        bf16 and a CPU run in FP32 train different numbers, so they are different runs (the device
        index is not). ``auto`` where the device is: the machine decides (a hand-written config;
        the platform's trials always name their device, from the profile's resources)."""
        kind = self.device.split(":")[0]
        if kind == "auto":
            return "auto"
        return f"{kind}/{self.amp_dtype if self.uses_amp(kind) else 'fp32'}"

    def uses_amp(self, device_type: str) -> bool:
        """Autocast on a device of this type: as set, else on for CUDA (training and evaluation)."""
        return device_type == "cuda" if self.amp is None else self.amp

    def uses_channels_last(self, device_type: str) -> bool:
        return device_type == "cuda" if self.channels_last is None else self.channels_last


def _digest(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the shape MLflow params take."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_switches(model: ModelConfig, reg_keys: set[str]) -> None:
    """Regularisers given for a part the model does not have are an error (a silent no-op
    would make a row measure something other than it says). ``reg_keys`` are the keys the user
    wrote, before defaults."""
    if "dropblock_keep_prob" in reg_keys and not model.dropblock:
        raise ValueError("reg.dropblock_keep_prob is set but the model has no DropBlock (add model.dropblock: true)")
