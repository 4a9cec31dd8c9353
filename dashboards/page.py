"""HTML of a table page and of the index: one self-contained file each (plotly.js inlined once),
so a page opens from disk, from an MLflow artifact, or from an e-mail attachment alike."""

from __future__ import annotations

import datetime as dt
import html
import math

import pandas as pd
import plotly.offline

from . import figures
from .source import METRICS, TableData

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1280px;color:#1f2328}
h1{margin-bottom:4px} .meta{color:#59636e} .warn{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;
border-radius:6px} table{border-collapse:collapse;font-size:13px;margin:12px 0} th,td{border:1px solid #d1d9e0;
padding:3px 8px;text-align:right} th{background:#f6f8fa} td.l{text-align:left} .FAILED{color:#cf222e;font-weight:600}
.RUNNING,.SCHEDULED{color:#9a6700;font-weight:600} .KILLED{color:#bc4c00;font-weight:600}
.NOT.RUN{color:#59636e} section{margin:28px 0}
"""


def _fmt(v: object, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else html.escape(str(v))


def rows_table(df: pd.DataFrame) -> str:
    head = ["row", "title", "status", "epochs", "KD teacher"]
    for m in METRICS:
        head += [f"paper {m}", f"measured {m}"]
    head += ["GMACs", "params (M)", "reason"]
    out = ["<table id='rows'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for rec in df.to_dict("records"):
        cells = [
            f"<td class='l'>{html.escape(rec['row'])}{' (ref)' if rec['reference'] else ''}</td>",
            f"<td class='l'>{html.escape(rec['title'] or '')}</td>",
            f"<td class='l {html.escape(rec['status'])}'>{html.escape(rec['status'])}</td>",
            f"<td>{_fmt(rec.get('epochs'))}</td>",
            f"<td class='l'>{_fmt(rec.get('teacher'))}</td>",
        ]
        for m in METRICS:
            cells += [f"<td>{_fmt(rec.get(f'paper_{m}'))}</td>", f"<td>{_fmt(rec.get(m))}</td>"]
        cells += [f"<td>{_fmt(rec.get('gmacs'), 3)}</td>", f"<td>{_fmt(rec.get('params_m'))}</td>"]
        cells.append(f"<td class='l'>{html.escape(rec.get('reason') or '')}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def status_counts(df: pd.DataFrame) -> str:
    """``"12 finished, 1 failed"``: rows per status, as the page header and the index show them."""
    return ", ".join(f"{n} {status.lower()}" for status, n in df["status"].value_counts().items())


def _figure_html(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"responsive": True})


def _document(title: str, body: str, plotly_js: bool = True) -> str:
    script = f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>" if plotly_js else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>{script}</head>"
        f"<body>{body}</body></html>"
    )


def mixed_evaluation_warning(df: pd.DataFrame) -> str:
    """A warning when finished rows were evaluated with different settings or corruption code
    (tag eval_hash): their mCE / mFR do not compare. Rerunning the table re-evaluates them."""
    done = df[df["status"] == "FINISHED"]
    if "eval_hash" not in done or done["eval_hash"].nunique() < 2:
        return ""
    groups = "; ".join(
        f"{html.escape(str(h))}: {', '.join(html.escape(r) for r in g['row'])}" for h, g in done.groupby("eval_hash")
    )
    return (
        "<p class='warn' id='mixed-eval'>Rows were evaluated with different evaluation settings or corruption "
        f"code, so their mCE and mFR do not compare ({groups}). Running the table again re-evaluates them.</p>"
    )


def table_page(data: TableData) -> str:
    m, df = data.manifest, data.rows
    profile = data.profile
    warn = (
        ""
        if profile == "imagenet"
        else (
            f"<p class='warn'>Measured with the <b>{html.escape(profile)}</b> profile "
            f"({html.escape(m.get('profile_description', ''))}): this is not a reproduction of the paper's "
            "ImageNet numbers. Compare rows with each other, and with the paper's relative gains, not the "
            "absolute values.</p>"
        )
    )
    warn += mixed_evaluation_warning(df)
    started = dt.datetime.fromtimestamp(data.parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
    head = (
        f"<h1>Table {html.escape(m['table'])}: {html.escape(m.get('title', ''))}</h1>"
        f"<p class='meta'>profile <b id='profile'>{html.escape(profile)}</b> · data {html.escape(m.get('data', ''))}"
        f" · MLflow experiment <b>{html.escape(data.experiment)}</b>, parent run "
        f"<code>{data.parent.info.run_id}</code> started {started} ({data.parent.info.status})"
        f" · rows: {status_counts(df)}"
        f" · drawn {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>{warn}"
    )
    sections = [
        ("rows", "Every row", rows_table(df)),
        ("paper-vs-measured", None, _figure_html(figures.paper_vs_measured(df), "fig-paper-vs-measured")),
        ("gains", None, _figure_html(figures.stacking_gains(df), "fig-gains")),
        ("pareto", None, _figure_html(figures.accuracy_vs_throughput(df), "fig-pareto")),
        ("corruptions", None, _figure_html(figures.corruption_heatmap(df), "fig-corruptions")),
        ("perturbations", None, _figure_html(figures.flip_rate_heatmap(df), "fig-perturbations")),
        ("curves", None, _figure_html(figures.training_curves(data.curves), "fig-curves")),
    ]
    body = head + "".join(
        f"<section id='{sid}'>{f'<h2>{title}</h2>' if title else ''}{content}</section>"
        for sid, title, content in sections
    )
    return _document(f"Table {m['table']} - paper vs measured", body)


def index_page(entries: list[dict]) -> str:
    """``entries``: experiment, file, title, profile, started, counts (see :func:`status_counts`)."""
    rows = "".join(
        f"<tr><td class='l'><a href='{html.escape(e['file'])}'>{html.escape(e['experiment'])}</a></td>"
        f"<td class='l'>{html.escape(e['title'])}</td><td class='l'>{html.escape(e['profile'])}</td>"
        f"<td class='l'>{html.escape(e['started'])}</td>"
        f"<td class='l'>{html.escape(e['counts'])}</td></tr>"
        for e in entries
    )
    body = (
        "<h1>Ablation dashboards</h1><p class='meta'>One page per table, from MLflow. "
        f"Drawn {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.</p>"
        "<table id='tables'><tr><th>table</th><th>title</th><th>profile</th><th>latest run</th><th>rows</th></tr>"
        f"{rows}</table>"
    )
    return _document("Ablation dashboards", body, plotly_js=False)
