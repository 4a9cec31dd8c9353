"""The plotly figures of a table page. Each takes the frames of :mod:`dashboards.source` and
returns a figure; rows that failed or have not finished keep their place, labelled with status."""

from __future__ import annotations

import math

import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PAPER, MEASURED = "#9aa5b1", "#1f6feb"
PALETTE = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.D3 + plotly.colors.qualitative.Dark24
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


def row_colours(rows: list[str]) -> dict[str, str]:
    """One colour per row, the same in every subplot and figure that colours rows."""
    return {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(dict.fromkeys(rows))}


def _err(df: pd.DataFrame, col: str) -> dict | None:
    """Error bars of one std over seeds, where there are any."""
    std = _col(df, f"{col}_std")
    return {"type": "data", "array": [s or 0 for s in std], "visible": True} if any(std) else None


def _empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 16})
    return fig


def paper_vs_measured(df: pd.DataFrame) -> go.Figure:
    """Top-1, mCE, mFR and throughput; a retrieval table's Recall@1 in top-1's place."""
    titles = dict(METRIC_TITLES)
    if "recall_at_1" in df and "top1" not in df:
        titles = {"recall_at_1": "Recall@1 (%)", **{k: v for k, v in titles.items() if k != "top1"}}
    fig = make_subplots(rows=2, cols=2, subplot_titles=list(titles.values()), vertical_spacing=0.2)
    x = labels(df)
    for i, metric in enumerate(titles):
        r, c = divmod(i, 2)
        for name, col, color in (("paper", f"paper_{metric}", PAPER), ("measured", metric, MEASURED)):
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=_col(df, col),
                    error_y=_err(df, col) if name == "measured" else None,
                    name=name if name == "paper" else "measured (mean ± std over seeds)",
                    marker_color=color,
                    legendgroup=name,
                    showlegend=i == 0,
                ),
                row=r + 1,
                col=c + 1,
            )
    fig.update_layout(barmode="group", height=720, title="Paper vs measured, per row (absolute values)")
    return fig


def gains(df: pd.DataFrame, kind: str, prefix: str = "", title: str | None = None) -> go.Figure:
    """Each judged row's gain (mean over seeds, 95% interval as error bars) beside the paper's,
    and the throughput it costs. ``prefix`` "base_" draws the vs-baseline view of a stacked table."""
    vs = f"{prefix}vs"
    judged = df[df[vs].notna()].reset_index(drop=True) if vs in df else df.iloc[0:0]
    # a retrieval table is judged on Recall@1 (the others on top-1, mCE and mFR)
    retrieval = f"{prefix}d_recall_at_1" in judged and f"{prefix}d_top1" not in judged
    metrics = ("recall_at_1", "mce", "mfr") if retrieval else ("top1", "mce", "mfr")
    first = "Recall@1 gain (points)" if retrieval else "top-1 gain (points)"
    heads = [first, "mCE change (lower is better)", "mFR change (lower is better)", "speed (x img/s)"]
    fig = make_subplots(rows=1, cols=4, subplot_titles=heads)
    if title is None:
        title = (
            "Gain of each added technique, vs the row it adds to (or the row the table names)"
            if kind == "stacked"
            else "Change of each row vs the baseline"
        )
    if judged.empty:
        return _empty(fig.update_layout(height=420, title=title), "no row is judged against another")
    x = [f"{a} vs {b}" for a, b in zip(labels(judged), judged[vs], strict=True)]
    for c, metric in enumerate(metrics):
        d, lo, hi = (_col(judged, f"{prefix}d_{metric}{s}") for s in ("", "_lo", "_hi"))
        verdicts = list(judged.get(f"{prefix}{metric}_verdict", [""] * len(judged)))
        err = {
            "type": "data",
            "symmetric": False,
            "array": [h - v if h is not None and v is not None else 0 for v, h in zip(d, hi, strict=True)],
            "arrayminus": [v - lo_ if lo_ is not None and v is not None else 0 for v, lo_ in zip(d, lo, strict=True)],
        }
        fig.add_trace(
            go.Bar(x=x, y=_col(judged, f"paper_{prefix}d_{metric}"), name="paper", marker_color=PAPER,
                   legendgroup="paper", showlegend=c == 0),
            row=1, col=c + 1,
        )  # fmt: skip
        fig.add_trace(
            go.Bar(x=x, y=d, error_y=err, name="measured (95% CI over seeds)", marker_color=MEASURED,
                   text=verdicts, hovertemplate="%{x}: %{y:.2f} (%{text})<extra></extra>",
                   legendgroup="measured", showlegend=c == 0),
            row=1, col=c + 1,
        )  # fmt: skip
    for name, col, color in (
        ("paper", f"paper_{prefix}throughput_cost", PAPER),
        ("measured", f"{prefix}throughput_cost", MEASURED),
    ):
        fig.add_trace(
            go.Bar(x=x, y=_col(judged, col), name=name, marker_color=color, legendgroup=name, showlegend=False),
            row=1, col=4,
        )  # fmt: skip
    fig.update_yaxes(range=[0, None], row=1, col=4)
    fig.update_layout(barmode="group", height=460, title=title)
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
            sel = sorted((p for p in pts if p[3] == ref), key=lambda p: (p[0], p[1]))
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in sel],
                    y=[p[1] for p in sel],
                    text=[p[2] for p in sel],
                    mode="markers+text",
                    # neighbours in throughput take turns above, below and beside: labels do not stack
                    textposition=[LABEL_SPOTS[i % len(LABEL_SPOTS)] for i in range(len(sel))],
                    hovertemplate="%{text}: %{x:.0f} img/s, top-1 %{y:.2f}<extra></extra>",
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


LABEL_SPOTS = ["top center", "bottom center", "middle right", "top right", "bottom left", "middle left"]


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


def training_curves(curves: pd.DataFrame, colours: dict[str, str]) -> go.Figure:
    """Per-epoch loss, validation top-1 (a retrieval table's Recall@1) and learning rate, one
    colour per row in every subplot (its seeds share it). The learning rate is drawn only where
    some row logged three or more values; with one or two epochs a row's curve is its markers,
    said in the title."""
    titles = {
        "loss": "training loss",
        "top1": "validation top-1 (%)",
        "recall_at_1": "validation Recall@1 (%)",
        "lr": "learning rate",
    }
    if curves.empty:
        fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles.values())[:2])
        return _empty(fig.update_layout(height=380, title="Training curves"), "no epoch has been logged yet")
    longest = int(curves.groupby(["unit", "metric"]).size().max())
    logged = set(curves["metric"])
    if "recall_at_1" not in logged:
        logged.add("top1")  # a classification table keeps its top-1 plot even before the first evaluation
    lr_curve = (curves["metric"] == "lr").groupby(curves["unit"]).sum().max() >= 3
    shown = [m for m in titles if m in logged | {"loss"} and (m != "lr" or lr_curve)]
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[titles[m] for m in shown])
    seen: set[str] = set()
    for (row, unit), frame in curves.groupby(["row", "unit"], sort=False):
        for c, metric in enumerate(shown):
            part = frame[frame["metric"] == metric].sort_values("epoch")
            fig.add_trace(
                go.Scatter(
                    x=part["epoch"],
                    y=part["value"],
                    mode="lines+markers",
                    marker={"size": 9 if longest < 3 else 6},
                    line={"color": colours.get(str(row), MEASURED)},
                    name=str(row),
                    legendgroup=str(row),
                    showlegend=c == 0 and row not in seen,
                    hovertemplate=f"{unit}: " + "epoch %{x}, %{y:.4g}<extra></extra>",
                ),
                row=1,
                col=c + 1,
            )
            fig.update_xaxes(title_text="epoch", dtick=1 if longest < 10 else None, row=1, col=c + 1)
        seen.add(row)
    note = f" - {longest} epoch(s) per row: points, not curves" if longest < 3 else ""
    fig.update_layout(height=420, title=f"Training curves per row, seeds in the row's colour{note}")
    return fig
