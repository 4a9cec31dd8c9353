"""The switches of every architecture the platform builds, as one validated schema.

Every row of every ablation table is a value of :class:`ModelConfig`, never a new class.
Unknown keys are rejected so a typo in a YAML table fails before anything trains.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RESNET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# BigLittleNet (official resnet_version 2) uses other block counts for 152
BIG_LITTLE_LAYERS = {50: (3, 4, 6, 3), 101: (4, 8, 18, 3), 152: (5, 12, 30, 3)}


class ModelConfig(BaseModel):
    """Architecture switches. ``arch`` picks the family; the rest apply to it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None,
        description="the registered name it stands for (models/names.py): its switches are the defaults the other "
        "keys override; shown in plans and logs, not part of its identity",
    )
    arch: Literal["resnet", "mobilenet_v1", "efficientnet"] = "resnet"
    depth: int = 50
    layers: tuple[int, int, int, int] | None = Field(None, description="override block counts per stage")
    width: int = Field(64, ge=4, description="stage-1 bottleneck width (64 in the paper)")
    small_input: bool = Field(False, description="CIFAR-style stem: stride-1 3x3, no max-pool")
    # ResNet-D
    deep_stem: bool = False
    avg_down: bool = False
    # channel attention
    se: bool = False
    se_reduction: int = Field(16, ge=1)
    sk: Literal["doubled_3x3", "3x3_5x5"] | None = None
    sk_reduction: int = Field(2, ge=1)
    sk_min_width: int = Field(32, ge=1)
    sk_5x5: Literal["dilated", "dense"] = Field(
        "dilated", description="3x3_5x5's second path: a dilated 3x3 (SKNet's, the paper's cost) or a dense 5x5"
    )
    # anti-aliasing: filter size 0 disables; placement per Table 3
    aa_filter: Literal[0, 2, 3, 4, 5, 6, 7] = 0
    aa_maxpool: bool = False
    aa_proj: bool = False
    aa_sconv: bool = True
    # BigLittleNet
    big_little: bool = False
    bl_alpha: int = Field(2, ge=1)
    bl_beta: int = Field(4, ge=1)
    # DropBlock
    dropblock: bool = False
    dropblock_size: int = Field(7, ge=1)
    zero_gamma: bool = True
    bn_momentum: float = Field(0.1, gt=0, lt=1, description="PyTorch convention; official TF 0.997 = 0.003")
    # MobileNet / EfficientNet
    width_mult: float = Field(1.0, gt=0, description="MobileNet width; EfficientNet: on top of the variant's")
    depth_mult: float = Field(1.0, gt=0, description="EfficientNet: block repeats on top of the variant's")
    variant: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"] = "b0"
    last_stride: Literal[1, 2] = Field(
        2,
        description="stride of the last stage; 1 keeps a 2x larger final map (image retrieval's 'no_downsample'); "
        "the weights keep their keys, so a stride-2 backbone loads into it",
    )
    official_tf: bool = Field(
        False,
        description="TF graph compatibility: 'SAME' stem max-pool padding (0 before, 1 after) and the stage-1 "
        "ResNet-D 2x2 average pool at stride 1, so ported official checkpoints give the same logits",
    )

    def inference_twin(self) -> ModelConfig:
        """The network an eval-mode forward pass runs: DropBlock is the identity there and the
        BN momentum and zero-gamma initialisation only shape training, so rows that differ in
        them alone have one throughput (timing them apart only measures noise)."""
        return self.model_copy(update={name: type(self).model_fields[name].default for name in _TRAINING_ONLY})

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        """A name stands for its registered switches; the keys given beside it override them."""
        if isinstance(data, dict) and data.get("name") is not None:
            from .names import REGISTRY

            if data["name"] not in REGISTRY:
                raise ValueError(f"unknown model {data['name']!r}; registered: {', '.join(REGISTRY)}")
            return {**REGISTRY[data["name"]][0], **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.arch == "resnet" and self.layers is None and self.depth not in RESNET_LAYERS:
            raise ValueError(f"depth must be one of {sorted(RESNET_LAYERS)} (or give layers), got {self.depth}")
        if self.arch != "resnet":
            if self.last_stride != 2:
                raise ValueError(f"last_stride applies to ResNets only, not {self.arch}")
            return self
        if self.aa_filter == 0 and (self.aa_maxpool or self.aa_proj):
            raise ValueError("aa_maxpool/aa_proj need aa_filter > 0")
        # switches the builder would silently ignore are conflicts, not no-ops
        if self.avg_down and self.aa_proj:
            raise ValueError(
                "avg_down and aa_proj conflict: aa_proj blurs the strided 1x1 projection, which avg_down "
                "replaces by an average pool (choose one)"
            )
        if self.big_little and (self.deep_stem or self.aa_maxpool or self.avg_down):
            given = [k for k in ("deep_stem", "avg_down", "aa_maxpool") if getattr(self, k)]
            raise ValueError(
                f"big_little conflicts with {', '.join(given)}: BigLittleNet keeps the 7x7 stem, replaces the "
                "max-pool by its own stem module and uses its own 3x3 average-pool shortcuts"
            )
        return self

    def identity(self) -> dict:
        """The dump that identifies an architecture, without switches that change nothing here
        (so adding a switch never changes the identity of models that do not use it)."""
        d = self.model_dump(mode="json", exclude={"name"})
        if self.sk != "3x3_5x5":
            d.pop("sk_5x5")
        if not self.official_tf:
            d.pop("official_tf")
        if self.last_stride == 2:
            d.pop("last_stride")
        if self.big_little and self.small_input:
            # the BigLittle stem stopped striding on small inputs: runs before that trained another net
            d["big_little_stem_stride"] = 1
        return d

    def block_counts(self) -> tuple[int, int, int, int]:
        if self.layers is not None:
            return self.layers
        table = BIG_LITTLE_LAYERS if self.big_little else RESNET_LAYERS
        return table[self.depth]

    @property
    def anti_alias(self) -> bool:
        return self.aa_filter > 0


_TRAINING_ONLY = ("dropblock", "dropblock_size", "zero_gamma", "bn_momentum")
