"""Tables of a summary: built once as text cells, then written as markdown, LaTeX, CSV or JSON.

The report renders the same Table objects as HTML. pandas only: `sweeplab table` never imports
torch or Lightning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.results.analysis import FRONT, Summary, best_within, pivot_cells, value_label
from sweeplab.errors import SweeplabError

VIEWS = ("all", "pivot", "points", "best")
_COST_LABELS = {"params": "params", "flops": "FLOPs", "latency": "latency", "size": "size"}


@dataclass
class Table:
    """One formatted table: caption, headers, text cells, alignment (l/r per column), a note."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    align: str
    note: str = ""
    strategies: list[str] | None = None  # each line's strategy (the report filters on it)


@dataclass
class Block:
    """The tables of one group (data, model and --by values)."""

    title: str
    values: dict[str, Any]
    tables: list[Table]


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _pct(value: Any) -> str:
    return "—" if _nan(value) else f"{100 * value:.2f}"


def _pm(mean: Any, std: Any, n: int) -> str:
    return _pct(mean) if n <= 1 or _nan(mean) else f"{_pct(mean)} ± {100 * std:.2f}"


def _si(value: Any) -> str:
    if _nan(value):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _bytes(value: Any) -> str:
    if _nan(value):
        return "—"
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def _num(value: Any, fmt: str) -> str:
    return "—" if _nan(value) else format(value, fmt)


def _pivot_table(summary: Summary, sub: pd.DataFrame, cells: pd.DataFrame, by: str) -> Table:
    labels = list(dict.fromkeys(cells.sort_values("order")["column"]))
    n_values = set(cells["n"])
    strategy_of = dict(zip(sub["series"], sub["strategy"], strict=True))
    found: dict[str, dict[str, str]] = {}
    for c in cells.to_dict("records"):
        text = _pm(c["acc"], c["acc_std"], c["n"])
        if c["column"] != "dense":
            text += f" / {_pct(c['acc_pruned'])}"
        text += f" (n={c['n']})" if len(n_values) > 1 else ""
        found.setdefault(c["series"], {})[c["column"]] = text
    rows = [[str(s), *(line.get(label, "") for label in labels)] for s, line in found.items()]
    strategies = [str(strategy_of.get(s, s)) for s in found]
    axis = "requested sparsity" if by == "sparsity" else "compression"
    seeds = f"n = {n_values.pop()} per cell" if len(n_values) == 1 else "n per cell"
    return Table(
        caption=f"Test accuracy % by {axis}: after finetune (mean ± std over seeds) / before "
        "finetune; dense = each strategy's own dense models (compression 1)",
        headers=["strategy", *labels],
        rows=rows,
        align="l" + "r" * len(labels),
        note=seeds,
        strategies=strategies,
    )


def _points_table(summary: Summary, sub: pd.DataFrame) -> Table:
    has = set(sub.columns)

    def fmt(column: str, f: Any) -> list[str]:
        # Column-wise: thousands of points format in a few ms.
        return [f(v) for v in sub[column].tolist()]

    columns: list[tuple[str, list[str]]] = [
        ("strategy", [str(v) for v in sub["series"].tolist()]),
        ("sparsity", fmt("sparsity_requested", lambda v: f"{v:g}")),
    ]
    if "round" in has:
        columns.append(("round", fmt("round", lambda v: "" if _nan(v) else f"{v:.0f}")))
    columns += [
        ("achieved", fmt("sparsity", lambda v: _num(v, ".4f"))),
        ("compression", fmt("compression", lambda v: _num(v, ".1f") + "x")),
        ("nonzero params", fmt("nonzero", lambda v: _num(v, ",.0f"))),
    ]
    if "flops" in has:
        columns.append(("FLOPs", fmt("flops", _si)))
        columns.append(("FLOP speedup", fmt("speedup", lambda v: _num(v, ".2f") + "x")))
    if "latency" in has:
        columns.append(("latency b1 ms", fmt("latency", lambda v: _num(v, ".3g"))))
    if "speedup_measured" in has:
        columns.append(
            ("measured speedup", fmt("speedup_measured", lambda v: _num(v, ".2f") + "x"))
        )
    if "size" in has:
        columns.append(("size", fmt("size", _bytes)))
    acc = [_pm(*v) for v in zip(sub["acc"].tolist(), sub["acc_std"].tolist(), sub["n"].tolist(),
                                strict=True)]  # fmt: skip
    columns += [
        ("acc pruned %", fmt("acc_pruned", _pct)),
        ("acc finetuned %", acc),
        ("n", fmt("n", str)),
    ]
    fronts = summary.costs
    for c in fronts:
        header = "pareto" if fronts == ["params"] else f"front {_COST_LABELS[c]}"
        columns.append((header, fmt(FRONT[c], lambda v: "*" if v else "")))
    costs = ", ".join(_COST_LABELS[c] for c in fronts)
    return Table(
        caption="Pareto table: test accuracy after finetune against cost, mean over seeds",
        headers=[h for h, _ in columns],
        rows=[list(r) for r in zip(*(cells for _, cells in columns), strict=True)],
        align="l" + "r" * (len(columns) - 1),
        note=f"* = on the Pareto front (no other point is as cheap and as accurate) of accuracy "
        f"vs {costs}; blank = dominated. nonzero params count all parameters, biases included",
        strategies=[str(s) for s in sub["strategy"]],
    )


def _best_table(summary: Summary, best: pd.DataFrame) -> Table:
    rows = []
    for r in best.to_dict("records"):
        found = bool(r["best"])
        sparsity = f"{r['sparsity_requested']:g}"
        rows.append([
            str(r["series"]), sparsity if found else f"({sparsity})",
            _num(r["compression"], ".1f") + "x" if found else "none",
            _pm(r["acc"], r["acc_std"], r["n"]), _pct(r["acc_dense"]),
            _num(-100 * r["drop"], "+.2f") if r["n"] <= 1 else
            f"{-100 * r['drop']:+.2f} ± {100 * r['drop_std']:.2f}", str(r["n"]),
        ])  # fmt: skip
    return Table(
        caption=f"Best compression within {summary.delta:g} accuracy point(s) of each run's "
        "own dense model (mean over seeds)",
        headers=[
            "strategy",
            "sparsity",
            "compression",
            "acc %",
            "dense acc %",
            "Δ acc vs dense",
            "n",
        ],
        rows=rows,
        align="l" + "r" * 6,
        note="(…) = no point is within Δ: the one with the smallest loss is shown",
        strategies=[str(s) for s in best["strategy"]],
    )


def blocks(summary: Summary, view: str = "all", pivot: str = "sparsity") -> list[Block]:
    """The tables of a summary, one Block per group.

    Args:
        summary: from summarize.
        view: all, pivot, points or best.
        pivot: pivot columns, "sparsity" or "compression".
    Returns:
        list of Block, in group order.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    pts, groups = summary.points, summary.groups
    cells = pivot_cells(summary, pivot) if view in ("all", "pivot") else None
    best = best_within(summary) if view in ("all", "best") else None
    out = []
    for key, sub in pts.groupby(groups, dropna=False, sort=True):
        values = dict(zip(groups, key, strict=True))
        title = " / ".join(
            [str(values["data"]), str(values["model"])]
            + [f"{k}={value_label(values[k])}" for k in groups[2:]]
        )
        tables = []

        def mine(frame: pd.DataFrame, values: dict[str, Any] = values) -> pd.DataFrame:
            mask = np.ones(len(frame), dtype=bool)
            for k, v in values.items():
                mask &= frame[k].isna().to_numpy() if _nan(v) else (frame[k] == v).to_numpy()
            return frame[mask]

        if cells is not None:
            tables.append(_pivot_table(summary, sub, mine(cells), pivot))
        if view in ("all", "points"):
            tables.append(_points_table(summary, sub))
        if best is not None and len(mine(best)):
            tables.append(_best_table(summary, mine(best)))
        out.append(Block(title, values, tables))
    return out


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
        {k: (None if _nan(v) else v) for k, v in rec.items()}
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


def render(summary: Summary, fmt: str, view: str = "all", pivot: str = "sparsity") -> str:
    """The summary as md, latex, csv or json text.

    Args:
        summary: from summarize.
        fmt: md | latex | csv | json.
        view: all | pivot | points | best. CSV holds one table: `all` writes the points table
            (tidy: one line per strategy and sparsity, front and best flags as columns).
        pivot: pivot columns, sparsity or compression.
    Returns:
        The text, newline-terminated.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    if fmt == "md":
        return to_markdown(blocks(summary, view, pivot))
    if fmt == "latex":
        return to_latex(blocks(summary, view, pivot))
    joined = summary.points.assign(run_ids=[" ".join(r) for r in summary.points["run_ids"]])
    frames = {
        "points": lambda: joined if fmt == "csv" else summary.points,
        "pivot": lambda: _wide_pivot(summary, pivot),
        "best": lambda: best_within(summary).drop(columns="run_ids"),
    }
    if fmt == "csv":
        return frames["points" if view == "all" else view]().to_csv(index=False)
    if fmt == "json":
        if view != "all":
            return json.dumps(_records(frames[view]()), indent=1, default=str) + "\n"
        out = {"delta": summary.delta, "costs": summary.costs, "groups": summary.groups}
        out.update({k: _records(f()) for k, f in frames.items()})
        return json.dumps(out, indent=1, default=str) + "\n"
    raise SweeplabError(f"--format {fmt!r} is not one of md, latex, csv, json")
