"""Registration of the sub-commands that live beside their subsystem (evaluate, ablation,
dashboard, ui, search). Each adds its parser; the subsystem is imported on use."""

from __future__ import annotations

from dashboards.cli import register as _dashboard

from .ablation.cli import register as _ablation
from .ablation.preview import register as _preview
from .ablation.report import register as _report
from .evaluation.cli import register as _evaluate
from .search.cli import register as _search
from .tracking.ui import register as _ui

REGISTRARS: list = [_evaluate, _ablation, _preview, _report, _search, _dashboard, _ui]
