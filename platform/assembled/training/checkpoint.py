"""Per-epoch checkpoints, written atomically so a killed worker never leaves a torn file.

Every checkpoint is loaded with ``weights_only=True``: a ``.pt`` file is a pickle, and a
crafted one would otherwise run arbitrary code in ``assembled evaluate``, a resumed trial or a
KD teacher. The trainer's own checkpoints hold only tensors and plain values, so nothing of
ours needs more.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

LAST = "last.pt"


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page that suggests weights_only=False; keep only what it found
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
        what = found.group(1).strip().splitlines()[0][:200] if found else "not tensors and plain values"
        raise ValueError(f"{path}: refused to load: it holds more than weights and could run code ({what})") from None
    except Exception as e:  # torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (a {type(state).__name__}, expected a dict of states)")
    return state
