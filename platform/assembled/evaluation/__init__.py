"""Evaluation suite: top-1, mCE, mFR, throughput, FLOPs and params.

Exports load on first use, so importing a sub-command's parser does not import torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "count_macs": ".complexity",
    "count_params": ".complexity",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
