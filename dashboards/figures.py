"""The plotly figures of a table page. Each takes the frames of :mod:`dashboards.source` and
returns a figure; rows that failed or have not finished keep their place, labelled with status."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PAPER, MEASURED = "#9aa5b1", "#1f6feb"
METRIC_TITLES = {"top1": "top-1 (%)", "mce": "mCE", "mfr": "mFR", "throughput": "throughput (img/s)"}
# ImageNet-C / -P order, so heat-map columns read as in the papers; unknown names follow sorted
CORRUPTION_ORDER = [
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
]  # fmt: skip
PERTURBATION_ORDER = [
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness", "translate", "rotate",
    "tilt", "scale",
]  # fmt: skip


def labels(df: pd.DataFrame) -> list[str]:
    """Row id, with the status when the row has no finished result."""
    return [r if s == "FINISHED" else f"{r} ({s.lower()})" for r, s in zip(df["row"], df["status"], strict=True)]


def _col(df: pd.DataFrame, name: str) -> list[float | None]:
    if name not in df.columns:
        return [None] * len(df)
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in df[name]]


def _empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 16})
    return fig


def paper_vs_measured(df: pd.DataFrame) -> go.Figure:
    fig = make_subplots(rows=2, cols=2, subplot_titles=list(METRIC_TITLES.values()), vertical_spacing=0.2)
    x = labels(df)
    for i, metric in enumerate(METRIC_TITLES):
        r, c = divmod(i, 2)
        for name, col, color in (("paper", f"paper_{metric}", PAPER), ("measured", metric, MEASURED)):
            fig.add_trace(
                go.Bar(x=x, y=_col(df, col), name=name, marker_color=color, legendgroup=name, showlegend=i == 0),
                row=r + 1,
                col=c + 1,
            )
    fig.update_layout(barmode="group", height=720, title="Paper vs measured, per row")
    return fig


def stacking_gains(df: pd.DataFrame) -> go.Figure:
    """What each added technique bought: a row's metric minus the previous (non-reference) row's."""
    steps = df[~df["reference"]].reset_index(drop=True)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["top-1 gain (points)", "mCE change (lower is better)"])
    if len(steps) < 2:
        return _empty(fig, "fewer than two stacking rows")
    x = [f"{a} → {b}" for a, b in zip(steps["row"][:-1], labels(steps)[1:], strict=True)]
    for c, metric in enumerate(("top1", "mce")):
        for name, col, color in (("paper", f"paper_{metric}", PAPER), ("measured", metric, MEASURED)):
            vals = _col(steps, col)
            delta = [None if a is None or b is None else b - a for a, b in zip(vals[:-1], vals[1:], strict=True)]
            fig.add_trace(
                go.Bar(x=x, y=delta, name=name, marker_color=color, legendgroup=name, showlegend=c == 0),
                row=1,
                col=c + 1,
            )
    fig.update_layout(barmode="group", height=420, title="Gain of each added technique, row over row")
    return fig


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points (throughput, top-1, id) that no other point beats on both, by throughput."""
    front: list[tuple[float, float, str]] = []
    best = -math.inf
    for p in sorted(points, key=lambda p: (-p[0], -p[1])):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return sorted(front)


def accuracy_vs_throughput(df: pd.DataFrame) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=["measured", "paper"])
    for c, (tp, acc) in enumerate((("throughput", "top1"), ("paper_throughput", "paper_top1"))):
        pts = [
            (t, a, r, ref)
            for t, a, r, ref in zip(_col(df, tp), _col(df, acc), df["row"], df["reference"], strict=True)
            if t is not None and a is not None
        ]
        for ref, name, symbol in ((False, "ablation rows", "circle"), (True, "reference models", "diamond")):
            sel = [p for p in pts if p[3] == ref]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in sel],
                    y=[p[1] for p in sel],
                    text=[p[2] for p in sel],
                    mode="markers+text",
                    textposition="top center",
                    name=name,
                    legendgroup=name,
                    showlegend=c == 0,
                    marker={"symbol": symbol, "size": 10, "color": MEASURED if not ref else "#d29922"},
                ),
                row=1,
                col=c + 1,
            )
        front = pareto_front([(p[0], p[1], p[2]) for p in pts])
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in front],
                y=[p[1] for p in front],
                mode="lines",
                line={"dash": "dash", "color": "#cf222e"},
                name="Pareto front",
                legendgroup="front",
                showlegend=c == 0,
            ),
            row=1,
            col=c + 1,
        )
        fig.update_xaxes(title_text="images / s", row=1, col=c + 1)
        fig.update_yaxes(title_text="top-1 (%)", row=1, col=c + 1)
    fig.update_layout(height=480, title="Accuracy vs throughput (Pareto front dashed)")
    return fig


def _ordered(df: pd.DataFrame, prefix: str, order: list[str]) -> list[str]:
    names = [c[len(prefix) :] for c in df.columns if c.startswith(prefix)]
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def heatmap(df: pd.DataFrame, prefix: str, order: list[str], title: str, colorbar: str) -> go.Figure:
    names = _ordered(df, prefix, order)
    fig = go.Figure()
    if not names:
        return _empty(fig.update_layout(title=title, height=300), "no finished row has these metrics yet")
    z = [_col(df, f"{prefix}{n}") for n in names]
    z = [list(r) for r in zip(*z, strict=True)]  # rows x names
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=names,
            y=labels(df),
            colorscale="YlOrRd",
            colorbar={"title": colorbar},
            hovertemplate="%{y} / %{x}: %{z:.1f}<extra></extra>",
        )
    )
    fig.update_layout(title=title, height=max(320, 28 * len(df) + 160), yaxis={"autorange": "reversed"})
    return fig


def corruption_heatmap(df: pd.DataFrame) -> go.Figure:
    return heatmap(df, "ce_", CORRUPTION_ORDER, "Corruption error per corruption (CE)", "CE")


def flip_rate_heatmap(df: pd.DataFrame) -> go.Figure:
    return heatmap(df, "fr_", PERTURBATION_ORDER, "Flip rate per perturbation (FR)", "FR")


def training_curves(curves: pd.DataFrame) -> go.Figure:
    titles = {"loss": "training loss", "top1": "validation top-1 (%)", "lr": "learning rate"}
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(titles.values()))
    if curves.empty:
        return _empty(fig.update_layout(height=380, title="Training curves"), "no epoch has been logged yet")
    for row, frame in curves.groupby("row", sort=False):
        for c, metric in enumerate(titles):
            part = frame[frame["metric"] == metric].sort_values("epoch")
            fig.add_trace(
                go.Scatter(
                    x=part["epoch"],
                    y=part["value"],
                    mode="lines+markers",
                    name=str(row),
                    legendgroup=str(row),
                    showlegend=c == 0,
                ),
                row=1,
                col=c + 1,
            )
            fig.update_xaxes(title_text="epoch", row=1, col=c + 1)
    fig.update_layout(height=420, title="Training curves per row (click a legend entry to hide a row)")
    return fig
