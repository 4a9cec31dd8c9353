"""Registration of the sub-commands that live beside their subsystem (evaluate, ablation,
dashboard, ui, search). Each adds its parser; the subsystem is imported on use."""

from __future__ import annotations

from .ablation.cli import register as _ablation
from .evaluation.cli import register as _evaluate

REGISTRARS: list = [_evaluate, _ablation]
