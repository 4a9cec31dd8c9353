"""Tags that say what produced a run: code version, library versions, config hash."""

from __future__ import annotations

import platform as _stdlib_platform
import subprocess
from functools import cache
from pathlib import Path

import torch
import torchvision

import assembled


@cache
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(assembled.__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance_tags(config_hash: str) -> dict[str, str]:
    return {
        "config_hash": config_hash,
        "git_commit": git_commit(),
        "version.assembled": assembled.__version__,
        "version.torch": torch.__version__,
        "version.torchvision": torchvision.__version__,
        "version.python": _stdlib_platform.python_version(),
    }
