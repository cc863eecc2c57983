"""A summary's tables as text: markdown, LaTeX (booktabs), CSV or JSON (`sweeplab table`).

pandas only: `sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results.analysis import Summary, best_within, pivot_cells
from sweeplab.results.format import missing
from sweeplab.results.compare_view import compare_frame
from sweeplab.results.layout import Block, Table
from sweeplab.results.tables import VIEWS, blocks


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(found: list[Block]) -> str:
    """Markdown: a `### data / model` heading per group, then its tables, columns aligned."""
    lines: list[str] = []
    for block in found:
        lines += [f"### {_md_escape(block.title)}", ""]
        for t in block.tables:
            rows = [[_md_escape(c) for c in row] for row in [t.headers, *t.rows]]
            widths = [max(len(r[i]) for r in rows) for i in range(len(t.headers))]

            def line(cells: list[str], widths: list[int] = widths, t: Table = t) -> str:
                padded = (
                    c.rjust(w) if a == "r" else c.ljust(w)
                    for c, w, a in zip(cells, widths, t.align, strict=True)
                )
                return "| " + " | ".join(padded) + " |"

            rule = ["-" * (w + 1) + (":" if a == "r" else "-")
                    for w, a in zip(widths, t.align, strict=True)]  # fmt: skip
            lines += [t.caption, "", line(rows[0]), "|" + "|".join(rule) + "|"]
            lines += [line(r) for r in rows[1:]]
            lines += ["", t.note, ""] if t.note else [""]
    return "\n".join(lines)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (special characters escaped, ± and Δ as math)."""
    out = "".join(_LATEX.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("—", "--")


def to_latex(found: list[Block]) -> str:
    """LaTeX tables with booktabs rules (\\usepackage{booktabs}), one table per group table."""
    parts = []
    for block in found:
        for t in block.tables:
            caption = latex_escape(f"{block.title}: {t.caption}. {t.note}".strip())
            body = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in t.rows]
            parts.append(
                "\n".join(
                    [
                        r"\begin{table}[t]",
                        r"\centering",
                        rf"\caption{{{caption}}}",
                        rf"\begin{{tabular}}{{{t.align}}}",
                        r"\toprule",
                        " & ".join(latex_escape(h) for h in t.headers) + r" \\",
                        r"\midrule",
                        *body,
                        r"\bottomrule",
                        r"\end{tabular}",
                        r"\end{table}",
                    ]
                )  # fmt: skip
            )
    return "% requires \\usepackage{booktabs}\n" + "\n\n".join(parts) + "\n"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # NaN is not JSON: missing values become null.
    return [
        {k: (None if missing(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]


def _wide_pivot(summary: Summary, pivot: str) -> pd.DataFrame:
    cells = pivot_cells(summary, pivot)
    if cells.empty:
        return cells
    wide = cells.pivot_table(
        index=[*summary.groups, "series"], columns="column", dropna=False, sort=False,
        values=["acc", "acc_std", "n", "acc_pruned"], aggfunc="first",
    )  # fmt: skip
    labels = list(dict.fromkeys(cells.sort_values("order")["column"]))
    wide.columns = [f"{label} {stat}" for stat, label in wide.columns]
    ordered = [f"{label} {s}" for label in labels for s in ("acc", "acc_std", "acc_pruned", "n")]
    return wide[[c for c in ordered if c in wide.columns]].reset_index()


def render(
    summary: Summary,
    fmt: str,
    view: str = "all",
    pivot: str = "sparsity",
    baseline: str | None = None,
) -> str:
    """The summary as md, latex, csv or json text.

    Args:
        summary: from summarize.
        fmt: md | latex | csv | json.
        view: all | pivot | points | best. CSV holds one table: `all` writes the points table
            (tidy: one line per strategy and sparsity, front and best flags as columns).
        pivot: pivot columns, sparsity or compression.
        baseline: the series `view=compare` compares with.
    Returns:
        The text, newline-terminated.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    if fmt == "md":
        return to_markdown(blocks(summary, view, pivot, baseline))
    if fmt == "latex":
        return to_latex(blocks(summary, view, pivot, baseline))
    joined = summary.points.assign(run_ids=[" ".join(r) for r in summary.points["run_ids"]])
    frames = {
        "points": lambda: joined if fmt == "csv" else summary.points,
        "pivot": lambda: _wide_pivot(summary, pivot),
        "best": lambda: best_within(summary).drop(columns="run_ids"),
        "compare": lambda: compare_frame(summary, baseline),
    }
    if fmt == "csv":
        return frames["points" if view == "all" else view]().to_csv(index=False)
    if fmt == "json":
        if view != "all":
            return json.dumps(_records(frames[view]()), indent=1, default=str) + "\n"
        out = {"delta": summary.delta, "costs": summary.costs, "groups": summary.groups}
        shown = [k for k in frames if k != "compare" or baseline is not None]
        out.update({k: _records(frames[k]()) for k in shown})
        return json.dumps(out, indent=1, default=str) + "\n"
    raise SweeplabError(f"--format {fmt!r} is not one of md, latex, csv, json")
