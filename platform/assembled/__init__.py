"""Assemble-CNN ablation platform: models, trainer, evaluation and tracked ablations."""

__version__ = "0.1.0"
