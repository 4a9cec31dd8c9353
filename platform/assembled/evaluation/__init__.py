"""Evaluation suite: top-1, mCE, mFR, throughput, FLOPs and params."""

from .complexity import count_macs, count_params

__all__ = ["count_macs", "count_params"]
