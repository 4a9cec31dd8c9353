"""The page of an Optuna search, from the Optuna storage and MLflow alone: optimisation history,
parameter importances, parallel coordinates, slice plots, and for two objectives the Pareto
front; Optuna's own plotly figures (``optuna.visualization``), with the searched row's own
result marked (tags ``base.<metric>`` of the study's MLflow parent run)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from assembled.redact import redact

from .page import _document, _figure_html

if TYPE_CHECKING:  # annotations only: MLflow loads where a client is made
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


class StudyError(LookupError):
    """A study that cannot be drawn (no such study in the storage)."""


@dataclass
class StudyData:
    study: object  # optuna.Study
    parent: Run | None
    metrics: list[str]
    base: dict[str, float]


def load_study(client: MlflowClient, storage: str, name: str) -> StudyData:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise StudyError(f"no study {name!r} in {redact(storage)} (studies: {names})") from None
    parent = None
    for exp in client.search_experiments(filter_string="name LIKE 'search-%'"):
        found = client.search_runs([exp.experiment_id], f"tags.kind = 'search' and tags.`optuna.study` = '{name}'")
        if found:
            parent = found[0]
            break
    identity = study.user_attrs.get("identity", {})
    metrics = str(identity.get("objective", "top1")).split(",")
    base = {}
    if parent is not None:
        base = {k[5:]: float(v) for k, v in parent.data.tags.items() if k.startswith("base.")}
    return StudyData(study, parent, metrics, base)


def _base_line(fig: go.Figure, value: float | None, label: str) -> go.Figure:
    if value is not None:
        fig.add_hline(y=value, line_dash="dash", line_color="#cf222e", annotation_text=label)
    return fig


def _or_note(make, title: str) -> go.Figure:
    """Optuna's figure, or an empty one saying why it cannot be drawn yet (e.g. importances need
    two completed trials)."""
    try:
        fig = make()
    except Exception as e:  # optuna raises ValueError/RuntimeError for too few trials
        fig = go.Figure()
        fig.add_annotation(text=f"{title}: {e}", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig.update_layout(title=title, height=460)


def figures(data: StudyData) -> list[tuple[str, go.Figure]]:
    from optuna import visualization as vis

    study, metrics, base = data.study, data.metrics, data.base
    row = data.parent.data.tags.get("search_row", "base row") if data.parent else "base row"
    out = []
    for i, m in enumerate(metrics):
        target = (lambda t, i=i: t.values[i]) if len(metrics) > 1 else None
        hist = _or_note(
            lambda target=target, m=m: vis.plot_optimization_history(study, target=target, target_name=m),
            f"history: {m}",
        )
        out.append((f"fig-history-{m}", _base_line(hist, base.get(m), f"{row} (the row's own run)")))
    first = (lambda t: t.values[0]) if len(metrics) > 1 else None
    out.append(
        (
            "fig-importances",
            _or_note(
                lambda: vis.plot_param_importances(study, target=first, target_name=metrics[0]), "parameter importances"
            ),
        )
    )
    out.append(
        (
            "fig-parallel",
            _or_note(
                lambda: vis.plot_parallel_coordinate(study, target=first, target_name=metrics[0]),
                "parallel coordinates",
            ),
        )
    )
    out.append(("fig-slice", _or_note(lambda: vis.plot_slice(study, target=first, target_name=metrics[0]), "slices")))
    if len(metrics) > 1:
        pareto = _or_note(lambda: vis.plot_pareto_front(study, target_names=metrics), "Pareto front")
        if all(m in base for m in metrics):
            pareto.add_trace(
                go.Scatter(x=[base[metrics[0]]], y=[base[metrics[1]]], mode="markers+text", text=[row],
                           textposition="top center", name=f"{row} (the row's own run)",
                           marker={"symbol": "star", "size": 16, "color": "#cf222e"})
            )  # fmt: skip
        out.append(("fig-pareto", pareto))
    return out


def study_page(data: StudyData) -> str:
    from optuna.trial import TrialState

    study = data.study
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    counts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    where = ""
    if data.parent is not None:
        tags = data.parent.data.tags
        where = (
            f" · row <b>{html.escape(tags.get('search_row', '?'))}</b> of table {html.escape(tags.get('table', '?'))}"
            f", profile {html.escape(tags.get('profile', '?'))}"
            f" · MLflow parent run <code>{data.parent.info.run_id}</code>"
        )
    base = ", ".join(f"{k} {v:.2f}" for k, v in data.base.items()) or "no finished run of the row (not marked)"
    head = (
        f"<h1>Study {html.escape(study.study_name)}</h1><p class='meta'>objective {html.escape(','.join(data.metrics))}"
        f" ({', '.join(d.name.lower() for d in study.directions)}){where} · trials: {counts} · the row's own result: "
        f"{html.escape(base)} · drawn {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>"
    )
    body = head + "".join(f"<section id='{fid}-s'>{_figure_html(fig, fid)}</section>" for fid, fig in figures(data))
    return _document(f"Study {study.study_name}", body)
