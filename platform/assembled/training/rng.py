"""Every random stream a training run draws from, captured into a checkpoint and restored on
resume, so a run interrupted after epoch k and resumed ends exactly where an uninterrupted
one does (bitwise on CPU). Ray retries make this matter: a retried trial must not silently
follow another trajectory under the same config hash.

Streams: torch's global generator (weight init, DropBlock masks, augmentations in the main
process, DataLoader worker seeds), CUDA's, Python's ``random``, NumPy's, and the trainer's own
generators (Mixup). The shuffling sampler is seeded per epoch and needs nothing. States are
stored as tensors, ints and lists, so ``weights_only`` loading accepts them.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(state), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
