"""The paper-style table of a summary, as text (terminal), Markdown, LaTeX or CSV: measured
mean +/- std beside the paper, then each gain with its 95% interval, verdict, the paper's gain
and the throughput it costs, and per metric how many resolvable steps agree with the paper.

``assembled report`` builds it from MLflow alone (the table's latest manifest and its runs);
the runner prints the text form and stores the Markdown as the parent run's description.
"""

from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from .stats import PAIRED, SINGLE, UNSURE, WELCH

LABELS = {"top1": "top-1", "mce": "mCE", "mfr": "mFR", "recall_at_1": "R@1", "throughput": "img/s"}


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v) else float(v)


def _pm(rec: dict, col: str, digits: int = 2) -> str:
    """mean ± std; the mean alone for one seed, or for a throughput timed once per architecture."""
    mean, std = _num(rec.get(col)), _num(rec.get(f"{col}_std"))
    if mean is None:
        return "-"
    if std is None or (col == "throughput" and std == 0):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _plain(v, fmt: str = "{:.2f}") -> str:
    v = _num(v) if not isinstance(v, str) else v
    if v is None:
        return "-"
    return v if isinstance(v, str) else fmt.format(v)


def _signed(v) -> str:
    return _plain(v, "{:+.2f}")


def _gain(rec: dict, col: str) -> str:
    d, lo, hi = (_num(rec.get(k)) for k in (f"d_{col}", f"d_{col}_lo", f"d_{col}_hi"))
    if d is None:  # no gain to print; a void comparison still says why
        v = rec.get(f"{col}_verdict")
        return v if isinstance(v, str) and v.startswith("void") else "-"
    interval = f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None and hi is not None else ""
    return f"{d:+.2f}{interval} {rec.get(f'{col}_verdict', '')}".strip()


def _present(summary: pd.DataFrame, col: str) -> bool:
    return col in summary and summary[col].notna().any()


def results_cells(summary: pd.DataFrame, baseline: str | None) -> list[dict[str, str]]:
    """One dict per row: the measured value (mean ± std over n seeds) beside the paper's."""
    out = []
    for rec in summary.to_dict("records"):
        cells = {"row": str(rec["row"]) + (" (ref)" if rec.get("reference") else ""), "status": str(rec["status"])}
        cells["n"] = f"{int(rec.get('n') or 0)}/{int(rec.get('seeds') or 0)}"
        for col in (c for c in LABELS if c in summary):
            cells[LABELS[col]] = _pm(rec, col, 0 if col == "throughput" else 2)
            if _present(summary, f"paper_{col}"):
                cells[f"paper {LABELS[col]}"] = _plain(rec.get(f"paper_{col}"), "{:g}")
        cells["x R50"] = _plain(rec.get("throughput_ratio_r50"))
        cells["GMACs"] = _plain(rec.get("gmacs"), "{:.3g}")
        cells["params (M)"] = _plain(rec.get("params_m"), "{:.3g}")
        for key in ("mce", "mfr"):
            col = f"{key}_vs_{baseline}"
            if baseline and _present(summary, col):
                n = _num(rec.get(f"{col}_n"))
                cells[f"{LABELS[key]} vs baseline row {baseline}"] = _plain(rec.get(col)) + (
                    f" (of {n:.0f})" if n else ""
                )
        if _present(summary, "flags"):
            cells["flags"] = _plain(rec.get("flags"))
        if _present(summary, "reused_from"):
            cells["reused from"] = _plain(rec.get("reused_from"))
        if _present(summary, "reason"):
            cells["reason"] = _plain(rec.get("reason"))
        out.append(cells)
    return out


def _void(summary: pd.DataFrame, col: str) -> bool:
    verdicts = summary.get(f"{col}_verdict")
    return verdicts is not None and verdicts.dropna().astype(str).str.startswith("void").any()


def gain_cells(summary: pd.DataFrame) -> list[dict[str, str]]:
    """One dict per judged row: its gain over the row it is judged against (95% interval,
    verdict), the paper's gain, and the throughput it costs (img/s relative to that row)."""
    if "vs" not in summary:
        return []
    out = []
    for rec in summary[summary["vs"].notna()].to_dict("records"):
        cells = {"row": str(rec["row"]), "vs": str(rec["vs"])}
        for col in ("top1", "mce", "mfr", "recall_at_1"):
            if _present(summary, f"d_{col}") or _void(summary, col):  # a void column still says why
                cells[f"Δ {LABELS[col]} (95% CI)"] = _gain(rec, col)
                cells[f"paper Δ {LABELS[col]}"] = _signed(rec.get(f"paper_d_{col}"))
        cells["speed"] = _plain(rec.get("throughput_cost"), "{:.2f}x")
        cells["paper speed"] = _plain(rec.get("paper_throughput_cost"), "{:.2f}x")
        out.append(cells)
    return out


def gain_method(summary: pd.DataFrame) -> str:
    """How the top-line gains were judged: seed by seed where both rows trained the same seeds,
    else as a difference of means (the rows that were are named)."""
    paired_text = (
        "rows trained with the same seeds are compared seed by seed (mean of the per-seed differences, "
        "95% t interval with n-1 degrees of freedom: a seed fixes the data order, augmentation and "
        "initial weights, so two rows of a table are not independent samples)"
    )
    welch_text = "mean difference over seeds with a 95% Welch interval"
    tests = summary.get("top1_test", summary.get("recall_at_1_test"))
    if tests is None:
        return welch_text
    judged = summary[tests.notna()]
    welch_rows = [str(r) for r, t in zip(judged["row"], tests[tests.notna()], strict=True) if t == WELCH]
    if not welch_rows:
        return paired_text
    if len(welch_rows) == len(judged):
        return welch_text
    return f"{paired_text}; {', '.join(welch_rows)} (no shared seeds): {welch_text}"


def seeds_needed(summary: pd.DataFrame, col: str) -> str | None:
    """What resolving the unresolved paired steps would take, if their mean gains held and their
    per-seed differences kept their spread (``<col>_seeds_needed``, from stats.seeds_to_resolve)."""
    needed, verdict, test = f"{col}_seeds_needed", f"{col}_verdict", f"{col}_test"
    if not {needed, verdict, test, "row", "n"} <= set(summary.columns):
        return None
    open_steps = summary[(summary[verdict] == UNSURE) & (summary[test] == PAIRED)]
    if open_steps.empty:
        return None
    parts = [
        f"{r.row} ~{r[needed]:.0f}" if pd.notna(r[needed]) else f"{r.row} over 1000" for _, r in open_steps.iterrows()
    ]
    return (
        f"Seeds a row for a {col} verdict on the open steps, if each mean gain held at its measured per-seed "
        f"spread: {', '.join(parts)} (this run: {summary['n'].max():.0f})"
    )


def notes(manifest: dict, summary: pd.DataFrame, agreement: dict[str, str]) -> list[str]:
    kind = manifest.get("kind", "alternatives")
    how = "each row vs the row it adds to" if kind == "stacked" else f"each row vs {manifest.get('baseline')}"
    if any(r.get("vs") for r in manifest.get("rows", [])):
        how += " unless the table names another (the vs column)"
    lines = []
    if "vs" in summary and summary["vs"].notna().any():
        lines.append(
            f"Gains: {how}; {gain_method(summary)}. "
            "'cannot tell' = the interval spans 0 at this budget (more seeds or epochs may resolve it)."
        )
    if (needed := seeds_needed(summary, "top1")) is not None:
        lines.append(needed)
    verdicts = summary["top1_verdict"].dropna().astype(str) if "top1_verdict" in summary else pd.Series([])
    if verdicts.str.startswith("void").any():
        lines.append(
            "void: the row it is judged against ended near chance in some seed; a gain over a model that "
            "learned nothing (and errors relative to it) measures nothing, so none is printed"
        )
    trained_by = {r["id"]: r["trained_by"] for r in manifest.get("rows", []) if r.get("trained_by")}
    if trained_by:
        pairs = ", ".join(f"{a} evaluates {b}'s weights" for a, b in trained_by.items())
        lines.append(
            f"{pairs} (the same training; only the evaluation crop differs): that gain is paired by seed (mean "
            "of the per-seed differences, t interval with n-1 degrees of freedom)"
        )
    same = {r["id"]: r["same_as"] for r in manifest.get("rows", []) if r.get("same_as")}
    if same:
        lines.append(
            "; ".join(f"{a} is {b} under this profile (the same config)" for a, b in same.items())
            + ": not trained twice, the same runs"
        )
    if manifest.get("mce_mean") and _present(summary, "mce"):
        lines.append(f"mCE: the mean over {manifest['mce_mean']}")
    if "top1_verdict" in summary and (summary["top1_verdict"] == SINGLE).any():
        lines.append("n=1: one seed a row cannot separate a gain from noise; run with --repeats 2 or more.")
    if agreement:
        lines.append("Sign agreement with the paper: " + "; ".join(f"{LABELS[k]} {v}" for k, v in agreement.items()))
    if "flags" in summary and summary["flags"].notna().any():
        lines.append(
            "flags: a model near chance or predicting one class 'never flips' (mFR ~0) and has flat corruption "
            "errors; such rows look robust without being so"
        )
    return lines


# -- renderers ---------------------------------------------------------------------------------
def text(cells: list[dict[str, str]]) -> str:
    if not cells:
        return ""
    heads = list(dict.fromkeys(k for c in cells for k in c))
    width = {h: max(len(h), *(len(c.get(h, "-")) for c in cells)) for h in heads}
    lines = ["  ".join(h.rjust(width[h]) for h in heads)]
    lines += ["  ".join(c.get(h, "-").rjust(width[h]) for h in heads) for c in cells]
    return "\n".join(lines)


def _md_table(cells: list[dict[str, str]]) -> str:
    if not cells:
        return ""
    heads = list(dict.fromkeys(k for c in cells for k in c))
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(esc(c.get(h, "-")) for h in heads) + " |" for c in cells]
    return "\n".join(lines)


def _latex_table(cells: list[dict[str, str]], caption: str) -> str:
    if not cells:
        return ""
    heads = list(dict.fromkeys(k for c in cells for k in c))

    def tex(s: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
            s = s.replace(a, b)
        return s.replace("±", r"$\pm$").replace("Δ", r"$\Delta$")

    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex(caption)}}}",
        r"\begin{tabular}{l" + "r" * (len(heads) - 1) + "}",
        r"\toprule",
        " & ".join(tex(h) for h in heads) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex(c.get(h, "-")) for h in heads) + r" \\" for c in cells]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _title(manifest: dict) -> str:
    return (
        f"Table {manifest.get('table')}: {manifest.get('title', '')} "
        f"(profile {manifest.get('profile')}, {manifest.get('repeats', 1)} seed(s) a row)"
    )


def terminal(manifest: dict, summary: pd.DataFrame, agreement: dict[str, str]) -> str:
    parts = [text(results_cells(summary, manifest.get("baseline")))]
    gains = gain_cells(summary)
    if gains:
        parts += ["", text(gains)]
    return "\n".join(parts + [""] + notes(manifest, summary, agreement))


def markdown(manifest: dict, summary: pd.DataFrame, agreement: dict[str, str] | None = None) -> str:
    from .summary import agreement as agree

    agreement = agree(summary) if agreement is None else agreement
    parts = [f"**{_title(manifest)}**", "", _md_table(results_cells(summary, manifest.get("baseline")))]
    gains = gain_cells(summary)
    if gains:
        parts += ["", _md_table(gains)]
    return "\n".join(parts + [""] + [f"- {n}" for n in notes(manifest, summary, agreement)])


def latex(manifest: dict, summary: pd.DataFrame, agreement: dict[str, str]) -> str:
    title = _title(manifest)
    parts = [_latex_table(results_cells(summary, manifest.get("baseline")), title)]
    gains = gain_cells(summary)
    if gains:
        parts += ["", _latex_table(gains, f"{title}: gains")]
    return "\n".join(parts + [""] + [f"% {n}" for n in notes(manifest, summary, agreement)])


# -- the command -------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from .results import ResultsError, load_results
    from .summary import agreement, summary_columns

    try:
        manifest, summary = load_results(args.table, args.profile)
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    agreed = agreement(summary)
    if args.format == "csv":
        print(summary_columns(summary).to_csv(index=False), end="")
    elif args.format == "latex":
        print(latex(manifest, summary, agreed))
    elif args.format == "md":
        print(markdown(manifest, summary, agreed))
    else:
        print(_title(manifest))
        print(terminal(manifest, summary, agreed))
    return 0


def register(sub) -> None:
    s = sub.add_parser("report", help="the paper-style table of a table's results, from MLflow alone")
    s.add_argument("table", help="table number (7) or the name of its MLflow experiment")
    s.add_argument("--format", choices=["text", "md", "latex", "csv"], default="text", help="output format")
    s.add_argument("--profile", help="the latest invocation with this profile (default: the latest of any)")
    s.set_defaults(fn=cmd_report)
