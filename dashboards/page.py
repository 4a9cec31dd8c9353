"""HTML of a table page and of the index: one self-contained file each (plotly.js inlined once),
so a page opens from disk, from an MLflow artifact, or from an e-mail attachment alike."""

from __future__ import annotations

import datetime as dt
import html
import math

import pandas as pd
import plotly.offline

from assembled.ablation.report import gain_method, seeds_needed
from assembled.ablation.summary import agreement as summary_agreement

from . import figures
from .source import METRICS, TableData

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1280px;color:#1f2328}
h1{margin-bottom:4px} .meta{color:#59636e} .warn{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;
border-radius:6px} table{border-collapse:collapse;font-size:13px;margin:12px 0} th,td{border:1px solid #d1d9e0;
padding:3px 8px;text-align:right} th{background:#f6f8fa} td.l{text-align:left} .FAILED{color:#cf222e;font-weight:600}
.RUNNING,.SCHEDULED{color:#9a6700;font-weight:600} .KILLED{color:#bc4c00;font-weight:600}
.NOT.RUN{color:#59636e} section{margin:28px 0} td.flag{background:#fff8c5;color:#9a6700;font-weight:600}
.verdict.helps{color:#1a7f37;font-weight:600} .verdict.hurts{color:#cf222e;font-weight:600}
.verdict.cannot{color:#59636e}
.note{color:#59636e;font-size:13px} .scroll{overflow-x:auto}
"""


def _fmt(v: object, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else html.escape(str(v))


def _pm(rec: dict, col: str, digits: int = 2) -> str:
    mean, std = rec.get(col), rec.get(f"{col}_std")
    if _fmt(mean) == "-":
        return "-"
    if _fmt(std) == "-" or (col == "throughput" and std == 0):
        return _fmt(mean, digits)
    return f"{_fmt(mean, digits)} ± {_fmt(std, digits)}"


def _gain(rec: dict, col: str) -> str:
    d, lo, hi = rec.get(f"d_{col}"), rec.get(f"d_{col}_lo"), rec.get(f"d_{col}_hi")
    if _fmt(d) == "-":
        return "-"
    ci = f" [{lo:+.2f}, {hi:+.2f}]" if _fmt(lo) != "-" and _fmt(hi) != "-" else ""
    verdict = html.escape(str(rec.get(f"{col}_verdict") or ""))
    return f"{d:+.2f}{ci} <span class='verdict {verdict.split(' ')[0]}'>{verdict}</span>"


def _table(tid: str, head: list[str], rows: list[list[str]]) -> str:
    out = [f"<div class='scroll'><table id='{tid}'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(r) + "</tr>" for r in rows]
    return "\n".join(out) + "</table></div>"


def rows_table(df: pd.DataFrame) -> str:
    """Every row: measured mean ± std over its seeds beside the paper, and flags for numbers
    that only look good (a model at chance "never flips")."""
    head = ["row", "title", "status", "seeds", "epochs", "KD teacher"]
    for m in METRICS:
        head += [f"paper {m}", f"measured {m}"]
    relative = [c for c in df.columns if "_vs_" in c and not c.endswith("_n") and df[c].notna().any()]
    head += [f"{c.split('_vs_')[0]} vs baseline row {c.split('_vs_')[1]}" for c in relative]
    head += ["GMACs", "params (M)", "flags", "reason"]
    body = []
    for rec in df.to_dict("records"):
        status = html.escape(str(rec["status"]))
        cells = [
            f"<td class='l'>{html.escape(rec['row'])}{' (ref)' if rec['reference'] else ''}</td>",
            f"<td class='l'>{html.escape(rec['title'] or '')}</td>",
            f"<td class='l {'mixed' if ',' in status else status}'>{status}</td>",
            f"<td>{int(rec.get('n') or 0)}/{int(rec.get('seeds') or 0)}</td>",
            f"<td>{_fmt(rec.get('epochs'))}</td>",
            f"<td class='l'>{_fmt(rec.get('teacher'))}</td>",
        ]
        for m in METRICS:
            cells += [
                f"<td>{_fmt(rec.get(f'paper_{m}'))}</td>",
                f"<td>{_pm(rec, m, 0 if m == 'throughput' else 2)}</td>",
            ]
        cells += [f"<td>{_fmt(rec.get(c))}</td>" for c in relative]
        cells += [f"<td>{_sig(rec.get('gmacs'))}</td>", f"<td>{_sig(rec.get('params_m'))}</td>"]
        flags = rec.get("flags") if isinstance(rec.get("flags"), str) else ""
        cells.append(f"<td class='l{' flag' if flags else ''}'>{html.escape(flags)}</td>")
        reason = rec.get("reason") if isinstance(rec.get("reason"), str) else ""
        cells.append(f"<td class='l'>{html.escape(reason)}</td>")
        body.append(cells)
    return _table("rows", head, body)


def gains_table(df: pd.DataFrame) -> str:
    """Each judged row's gain over the row it is judged against (95% interval, verdict) beside
    the paper's gain, and the throughput it costs."""
    if "vs" not in df or df["vs"].isna().all():
        return "<p class='note' id='gains-table'>No row is judged against another in this table.</p>"
    head = ["row", "vs"]
    judged = [m for m in ("top1", "mce", "mfr", "recall_at_1") if f"d_{m}" in df]  # what the table measures
    for m in judged:
        head += [f"Δ {m} (95% CI)", f"paper Δ {m}"]
    head += ["speed (x img/s)", "paper speed"]
    body = []
    for rec in df[df["vs"].notna()].to_dict("records"):
        cells = [f"<td class='l'>{html.escape(rec['row'])}</td>", f"<td class='l'>{html.escape(rec['vs'])}</td>"]
        for m in judged:
            cells += [f"<td>{_gain(rec, m)}</td>", f"<td>{_signed(rec.get(f'paper_d_{m}'))}</td>"]
        cells += [
            f"<td>{_times(rec.get('throughput_cost'))}</td>",
            f"<td>{_times(rec.get('paper_throughput_cost'))}</td>",
        ]
        body.append(cells)
    return _table("gains-table", head, body)


def _sig(v: object) -> str:
    return "-" if _fmt(v) == "-" else f"{v:.3g}"


def _signed(v: object) -> str:
    return "-" if _fmt(v) == "-" else f"{v:+.2f}"


def _times(v: object) -> str:
    return "-" if _fmt(v) == "-" else f"{v:.2f}x"


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


def scale_notes(data: TableData) -> str:
    """When the absolute paper-vs-measured bars do not compare, say why (the relative view does)."""
    units, notes = data.units, []
    if data.profile != "imagenet":
        notes.append(f"the {html.escape(data.profile)} profile is not ImageNet at 224 px for the paper's epochs")
    refs = set(units.get("mce_reference", pd.Series(dtype=str)).dropna()) - {""}
    if any(not r.startswith("alexnet") for r in refs):
        notes.append(
            "mCE / mFR here are raw error and flip rates (no AlexNet normalisation off ImageNet); the paper's "
            "are normalised by AlexNet: compare the 'vs baseline' columns and the relative view"
        )
    devices = sorted(set(units.get("device", pd.Series(dtype=str)).dropna()) - {""})
    notes.append(
        f"throughput was timed on {', '.join(html.escape(d) for d in devices) or 'this cluster'}; the paper's on an "
        "NVIDIA P40 (batch 64, FP32): compare ratios (x R50, speed vs), not images/s"
    )
    return "<p class='note' id='scales'>Not comparable in absolute terms: " + "; ".join(notes) + ".</p>"


def mce_mean_note(data: TableData) -> str:
    """Which mean the mCE column is (15 standard corruptions or the official code's 19): the
    paper's Table 7 figures are 19-corruption means, Hendrycks' tables 15-corruption ones."""
    mean = data.manifest.get("mce_mean")
    if not mean or "mce" not in data.rows or data.rows["mce"].isna().all():
        return ""
    return f"<p class='note' id='mce-mean'>mCE: the mean over {html.escape(str(mean))}.</p>"


def table_page(data: TableData) -> str:
    m, df = data.manifest, data.rows
    profile = data.profile
    kind = m.get("kind", "alternatives")
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
    warn += mixed_evaluation_warning(data.units.assign(row=data.units["unit"]))
    if "flags" in df and df["flags"].notna().any():
        flagged = ", ".join(html.escape(r) for r in df.loc[df["flags"].notna(), "row"])
        warn += (
            f"<p class='warn' id='flags'>Rows {flagged} are flagged: a model near chance or predicting one class "
            "never flips (mFR ~0) and has flat corruption errors, so it looks robust without being so.</p>"
        )
    started = dt.datetime.fromtimestamp(data.parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
    repeats = m.get("repeats", 1)
    head = (
        f"<h1>Table {html.escape(m['table'])}: {html.escape(m.get('title', ''))}</h1>"
        f"<p class='meta'>profile <b id='profile'>{html.escape(profile)}</b> · data {html.escape(m.get('data', ''))}"
        f" · {repeats} seed(s) a row · {html.escape(kind)} table"
        f" · MLflow experiment <b>{html.escape(data.experiment)}</b>, parent run "
        f"<code>{data.parent.info.run_id}</code> started {started} ({data.parent.info.status})"
        f" · rows: {status_counts(df)}"
        f" · drawn {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>{warn}"
    )
    agreement = summary_agreement(df)
    verdicts = (
        f"<p class='note'>Gains: {html.escape(gain_method(df))}; <b>cannot tell</b> means "
        "the interval spans 0 at this budget. "
        + (html.escape(needed) + ". " if (needed := seeds_needed(df, "top1")) else "")
        + (
            f"Sign agreement with the paper: {html.escape('; '.join(f'{k} {v}' for k, v in agreement.items()))}."
            if agreement
            else ""
        )
        + "</p>"
    )
    colours = figures.row_colours(list(df["row"]))
    sections = [
        ("rows", "Every row", rows_table(df) + mce_mean_note(data)),
        ("gains-section", "Gains", gains_table(df) + verdicts),
        ("gains", None, _figure_html(figures.gains(df, kind), "fig-gains")),
    ]
    if kind == "stacked" and m.get("baseline"):
        title = f"Relative view: each row vs the baseline {m['baseline']}, beside the paper's change"
        sections.append(("relative", None, _figure_html(figures.gains(df, kind, "base_", title), "fig-relative")))
    sections += [
        (
            "paper-vs-measured",
            None,
            scale_notes(data) + _figure_html(figures.paper_vs_measured(df), "fig-paper-vs-measured"),
        ),
        ("pareto", None, _figure_html(figures.accuracy_vs_throughput(df), "fig-pareto")),
        ("corruptions", None, _figure_html(figures.corruption_heatmap(df), "fig-corruptions")),
        ("perturbations", None, _figure_html(figures.flip_rate_heatmap(df), "fig-perturbations")),
        ("curves", None, _figure_html(figures.training_curves(data.curves, colours), "fig-curves")),
    ]
    body = head + "".join(
        f"<section id='{sid}'>{f'<h2>{title}</h2>' if title else ''}{content}</section>"
        for sid, title, content in sections
    )
    return _document(f"Table {m['table']} - paper vs measured", body)


def _page_link(e: dict) -> str:
    """A link to the table's page, or how to draw one (no dead links)."""
    if e.get("file"):
        return f"<a href='{html.escape(e['file'])}'>{html.escape(e['experiment'])}</a>"
    name = html.escape(e["experiment"])
    return f"{name} <span class='note'>(no page yet: make dashboard TABLE={name})</span>"


def index_page(entries: list[dict]) -> str:
    """``entries``: experiment, file, title, profile, started, counts (see :func:`status_counts`)."""
    rows = "".join(
        f"<tr><td class='l'>{_page_link(e)}</td>"
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
