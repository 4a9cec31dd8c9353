"""What an evaluation measures (depth, corruption set, subsets, JPEG and x264 steps, timing)
and its identity. Torch-free: tables, profiles and plans validate it without the code behind."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..robustness_sets import CORRUPTION_IMPLEMENTATION, PERTURBATION_IMPLEMENTATION

# what else the numbers depend on; a change re-evaluates every stored row (tag eval_hash)
PROTOCOL = {
    "throughput": "timed alone on a node, once per inference network (DropBlock off), min/median/max, "
    "ratio to a ResNet-50 of the row's scale",
    "eval_resize": "int(size / 0.875), as the official code",
}


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    robustness: Literal["none", "quick", "full"] = "quick"
    extra_corruptions: bool = Field(
        False, description="mCE over the official code's 19 corruptions (the paper's Table 7), not the standard 15"
    )
    scale_corruptions: bool = Field(
        True,
        description="scale the 224-px set's spatial constants to the evaluation size (off: kept as published, as the "
        "official Assemble generator did at 256 px)",
    )
    mce_images: int | None = Field(None, ge=1, description="subset for mCE (default: quick 500, full all)")
    mfr_images: int | None = Field(None, ge=1, description="subset for mFR (default: quick 100, full 1000)")
    reference: Literal["auto", "alexnet", "none"] = "auto"
    imagenet_c: str | None = Field(None, description="pre-generated ImageNet-C folder to read instead")
    released_jpeg: bool = Field(
        True, description="save 224/64-px corrupted sets as JPEG q85 like the released ImageNet-C files"
    )
    perturbation_x264: bool = Field(
        False,
        description="x264-encode the 224/64-px perturbation sequences as the ImageNet-P videos were (needs PyAV; "
        "1.3-1.9 s per sequence at 224 px on 2 CPU cores)",
    )
    throughput: bool = True
    throughput_batch: int = Field(64, ge=1)
    throughput_repeats: int = Field(5, ge=1)
    seed: int = 0

    @field_validator("perturbation_x264")
    @classmethod
    def _codec_installed(cls, on: bool) -> bool:
        # checked where the config is read, not after a trial has trained for hours
        if not on:
            return on
        from ..data.video import available

        if not available():
            raise ValueError("needs PyAV with libx264: `make install` (or pip install 'assembled[video]')")
        return on

    def mce_mean(self) -> str:
        """Which mean ``mce`` is, for tags, manifests and reports."""
        if self.extra_corruptions:
            return "19 corruptions (the 15 standard + the official code's 4 extras, as the paper)"
        return "15 standard corruptions (Hendrycks)"

    def identity(self) -> str:
        """What the numbers depend on: these settings, the generation of corrupted and
        perturbed images, and the throughput protocol. Equal identities give comparable numbers."""
        d = self.model_dump(mode="json")
        d["implementation"] = [CORRUPTION_IMPLEMENTATION, PERTURBATION_IMPLEMENTATION]
        d["protocol"] = PROTOCOL
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
