"""Evaluation suite: top-1, mCE, mFR, throughput, FLOPs and params.

Exports load on first use (PEP 562), so importing a sub-command's parser does not import torch.
"""

from importlib import import_module

_EXPORTS = {"count_macs": ".complexity", "count_params": ".complexity"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
