"""Where a trial's images come from, as one validated schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..identity import NEVER, UNLESS_DEFAULT, only_with

IN_MEMORY = ("synthetic", "cifar", "folder")  # kinds whose images can sit in one uint8 tensor


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal[
        "synthetic",
        "folder",
        "cifar",
        "food101",
        "stanford_cars",
        "flowers102",
        "fgvc_aircraft",
        "oxford_pets",
        "cub200",
        "cars196",
        "sop",
    ] = "synthetic"
    path: str | None = Field(
        None,
        description="root of an ImageFolder (with train/ and val/), a CIFAR pickle folder, or a published "
        "dataset layout (layouts.py)",
    )
    split: Literal["standard", "zero_shot"] = Field(
        "standard",
        json_schema_extra=UNLESS_DEFAULT,
        description="zero_shot (image retrieval): the first half of the classes train, the second half is query and "
        "gallery (Song et al.)",
    )
    fine_grained: bool = Field(
        False, description="synthetic only: many similar classes (one shape family)", json_schema_extra=UNLESS_DEFAULT
    )
    preprocessing: Literal["imagenet", "reid"] = Field(
        "imagenet",
        description="reid: the official retrieval preprocessing (square resizes, no centre crop)",
        json_schema_extra=UNLESS_DEFAULT,
    )
    num_classes: int = Field(10, ge=2, description="synthetic only; real data counts its class folders")
    train_size: int = Field(5000, ge=1, description="synthetic images per epoch")
    val_size: int = Field(1000, ge=1, description="synthetic evaluation images")
    source_size: int = Field(64, ge=8, description="synthetic rendering resolution")
    image_size: int = Field(64, ge=8, description="training crop")
    eval_size: int | None = Field(None, description="evaluation crop; defaults to image_size")
    min_crop_scale: float = Field(0.05, gt=0, le=1)
    autoaugment: bool = False
    autoaugment_policy: Literal["official", "good", "torchvision"] = Field(
        "official",
        json_schema_extra=only_with("autoaugment"),
        description="official: the Assemble-ResNet code's ImageNet policy; good: its 95 CIFAR-10 sub-policies (FGVC "
        "fine-tuning); torchvision: v2.AutoAugment(IMAGENET)",
    )
    cache: bool = Field(
        False,
        json_schema_extra=NEVER,  # the decoded cache holds the very pixels the loader would read
        description="folder only: decode the split once into a uint8 array cache reused by every run (images of one "
        "size, e.g. CIFAR); a folder holding only *train.tar.gz / *test.tar.gz archives is always read this way",
    )
    pipeline: Literal["loader", "device"] = Field(
        "loader",
        json_schema_extra=UNLESS_DEFAULT,
        description="loader: per-image transforms in DataLoader workers; device: the dataset held in memory on the "
        "training device, cropped, flipped and AutoAugmented in batches there (in-memory data: synthetic, cifar, a "
        "folder through the decoded cache)",
    )
    epoch_size: int | None = Field(
        None,
        ge=1,
        description="images per epoch: a fresh random subset of the train split each epoch (default: all)",
        json_schema_extra=UNLESS_DEFAULT,
    )
    limit_per_class: int | None = Field(None, ge=1, description="folder only: first N images per class (quick runs)")
    val_limit_per_class: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0, json_schema_extra=NEVER)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.kind != "synthetic" and not self.path:
            raise ValueError(f"data.kind={self.kind!r} needs data.path")
        if self.pipeline == "device":
            if self.kind not in IN_MEMORY or self.split != "standard":
                raise ValueError(
                    f"pipeline device holds the data in memory: kind {self.kind!r} (split {self.split}) is read per "
                    f"image; it takes {', '.join(IN_MEMORY)} with split standard"
                )
            if self.preprocessing != "imagenet" or (self.autoaugment and self.autoaugment_policy == "torchvision"):
                raise ValueError("pipeline device: preprocessing reid and torchvision's AutoAugment are per image only")
        return self

    @property
    def eval_crop(self) -> int:
        return self.eval_size or self.image_size
