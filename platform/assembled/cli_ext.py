"""Registration of the sub-commands that belong to later subsystems (evaluate, ablation,
dashboard, ui, search). Each adds its parser; the import of the subsystem happens on use."""

from __future__ import annotations

REGISTRARS: list = []
