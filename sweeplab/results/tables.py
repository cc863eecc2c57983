"""The tables of a summary (pivot, points, best within Δ) as text cells, one Block per group.

render.py writes them as markdown or LaTeX, the report as HTML. pandas only: `sweeplab table`
never imports torch or Lightning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results.analysis import Summary, best_within, pivot_cells
from sweeplab.results.compare_view import check_baseline, compare_table
from sweeplab.results.format import missing, num, pct, pct_ci, si, size
from sweeplab.results.layout import Block, Table
from sweeplab.results.pareto import FRONT
from sweeplab.results.series import is_dense, value_label
from sweeplab.results.spread import ranged
from sweeplab.results.stats import half_width

VIEWS = ("all", "pivot", "points", "best", "compare")

_COST_LABELS = {"params": "params", "flops": "FLOPs", "latency": "latency", "size": "size"}


def recovered(sub: pd.DataFrame) -> str:
    """How the pruned points of a table recovered, for captions and headers: "finetune" when
    they all did so, the method's name when they share another, else "recovery"."""
    methods = set(sub.loc[~is_dense(sub["series"]), "recovery"].dropna())
    return methods.pop() if len(methods) == 1 else "finetune" if not methods else "recovery"


def _pivot_table(summary: Summary, sub: pd.DataFrame, cells: pd.DataFrame, by: str) -> Table:
    labels = list(dict.fromkeys(cells.sort_values("order")["column"]))
    n_values = set(cells["n"])
    strategy_of = dict(zip(sub["series"], sub["strategy"], strict=True))
    found: dict[str, dict[str, str]] = {}
    for c in cells.to_dict("records"):
        text = pct_ci(c["acc"], c["acc_std"], c["n"])
        if c["column"] != "dense":
            text += f" / {pct(c['acc_pruned'])}"
        text += f" (n={c['n']})" if len(n_values) > 1 else ""
        found.setdefault(c["series"], {})[c["column"]] = text
    rows = [[str(s), *(line.get(label, "") for label in labels)] for s, line in found.items()]
    strategies = [str(strategy_of.get(s, s)) for s in found]
    axis = "requested sparsity" if by == "sparsity" else "compression"
    seeds = f"n = {n_values.pop()} per cell" if len(n_values) == 1 else "n per cell"
    return Table(
        caption=f"Test accuracy % by {axis}: after {recovered(sub)} (mean ± 95% CI over seeds) / "
        f"before {recovered(sub)}; dense = each strategy's own dense models (compression 1)",
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

    def spread(column: str, spec: str, suffix: str = "") -> list[str]:
        # The figure with its interval (column_lo, column_hi) where the points have one.
        ends = [sub[f"{column}_{e}"] if f"{column}_{e}" in has else [None] * len(sub)
                for e in ("lo", "hi")]  # fmt: skip
        values = zip(sub[column].tolist(), *(list(e) for e in ends), strict=True)
        return [ranged(v, lo, hi, spec, suffix) for v, lo, hi in values]

    columns: list[tuple[str, list[str]]] = [
        ("strategy", [str(v) for v in sub["series"].tolist()]),
        ("sparsity", fmt("sparsity_requested", lambda v: f"{v:g}")),
    ]
    if "round" in has:
        columns.append(("round", fmt("round", lambda v: "" if missing(v) else f"{v:.0f}")))
    columns += [
        ("achieved", fmt("sparsity", lambda v: num(v, ".4f"))),
        ("compression", fmt("compression", lambda v: num(v, ".1f") + "x")),
        ("nonzero params", fmt("nonzero", lambda v: num(v, ",.0f"))),
    ]
    if "flops" in has:
        columns.append(("FLOPs", fmt("flops", si)))
        columns.append(("FLOP speedup", fmt("speedup", lambda v: num(v, ".2f") + "x")))
    if "latency" in has:
        columns.append(("latency b1 ms [q25, q75]", spread("latency", ".3g")))
    if "speedup_measured" in has:
        columns.append(("measured speedup [q25, q75]", spread("speedup_measured", ".2f", "x")))
    if "size" in has:
        columns.append(("size", fmt("size", size)))
    acc = [pct_ci(*v) for v in zip(sub["acc"].tolist(), sub["acc_std"].tolist(), sub["n"].tolist(),
                                strict=True)]  # fmt: skip
    method = recovered(sub)
    columns += [
        ("acc pruned %", fmt("acc_pruned", pct)),
        ("acc finetuned %" if method == "finetune" else f"acc after {method} %", acc),
    ]
    if "acc_reinit" in has and sub["acc_reinit"].notna().any():
        # LTH's control: the same mask trained from a random re-initialization.
        columns.append(("acc re-init control %", fmt("acc_reinit", pct)))
    columns.append(("n", fmt("n", str)))
    fronts = summary.costs
    for c in fronts:
        header = "pareto" if fronts == ["params"] else f"front {_COST_LABELS[c]}"
        columns.append((header, fmt(FRONT[c], lambda v: "*" if v else "")))
    costs = ", ".join(_COST_LABELS[c] for c in fronts)
    return Table(
        caption=f"Pareto table: test accuracy after {method} against cost, mean ± 95% CI over "
        "seeds (t)",
        headers=[h for h, _ in columns],
        rows=[list(r) for r in zip(*(cells for _, cells in columns), strict=True)],
        align="l" + "r" * (len(columns) - 1),
        note=f"* = on the Pareto front (no other point is as cheap and as accurate) of accuracy "
        f"vs {costs}; blank = dominated. nonzero params count all parameters, biases included"
        + (_SPREAD_NOTE if "latency" in has or "speedup_measured" in has else ""),
        strategies=[str(s) for s in sub["strategy"]],
    )


_SPREAD_NOTE = (
    ". Measured figures show [q25, q75]: the 25th and 75th percentiles of their timed samples "
    "(lowest and highest over seeds); the latency front counts a point cheaper only when its "
    "interval lies wholly below, and marks no point whose rows recorded no spread"
)


def _signed_ci(drop: float, std: float, n: int) -> str:
    """-drop in points with its 95% CI half-width: the accuracy change against dense."""
    half = None if missing(std) else half_width(float(std), int(n))
    text = num(-100 * drop, "+.2f")
    return text if half is None else f"{text} ± {100 * half:.2f}"


def _best_table(summary: Summary, best: pd.DataFrame) -> Table:
    rows = []
    for r in best.to_dict("records"):
        found = bool(r["best"])
        sparsity = f"{r['sparsity_requested']:g}"
        rows.append([
            str(r["series"]), sparsity if found else f"({sparsity})",
            num(r["compression"], ".1f") + "x" if found else "none",
            pct_ci(r["acc"], r["acc_std"], r["n"]), pct(r["acc_dense"]),
            _signed_ci(r["drop"], r["drop_std"], r["n"]),
            num(-100 * r["drop_val"], "+.2f"), str(r["n"]),
        ])  # fmt: skip
    return Table(
        caption=f"Best compression within {summary.delta:g} accuracy point(s) of each run's "
        "own dense model, selected on validation accuracy, test accuracy shown (mean ± 95% CI "
        "over seeds)",
        headers=[
            "strategy",
            "sparsity",
            "compression",
            "acc %",
            "dense acc %",
            "Δ acc vs dense",
            "Δ val acc",
            "n",
        ],
        rows=rows,
        align="l" + "r" * 7,
        note="(…) = no point is within Δ on validation: the one with the smallest validation "
        "loss is shown",
        strategies=[str(s) for s in best["strategy"]],
    )


def blocks(
    summary: Summary, view: str = "all", pivot: str = "sparsity", baseline: str | None = None
) -> list[Block]:
    """The tables of a summary, one Block per group.

    Args:
        summary: from summarize.
        view: all, pivot, points, best or compare (paired differences against baseline; `all`
            includes it when a baseline is given).
        pivot: pivot columns, "sparsity" or "compression".
        baseline: the series the compare view compares with.
    Returns:
        list of Block, in group order.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    pts, groups = summary.points, summary.groups
    cells = pivot_cells(summary, pivot) if view in ("all", "pivot") else None
    best = best_within(summary) if view in ("all", "best") else None
    compare = view == "compare" or (view == "all" and baseline is not None)
    if compare:
        check_baseline(summary.runs, baseline, groups)
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
                mask &= frame[k].isna().to_numpy() if missing(v) else (frame[k] == v).to_numpy()
            return frame[mask]

        if cells is not None:
            tables.append(_pivot_table(summary, sub, mine(cells), pivot))
        if view in ("all", "points"):
            tables.append(_points_table(summary, sub))
        if best is not None and len(mine(best)):
            tables.append(_best_table(summary, mine(best)))
        if compare:
            table = compare_table(mine(summary.runs), str(baseline))
            tables += [table] if table is not None else []
        if tables:  # e.g. a compare view's group without the baseline
            out.append(Block(title, values, tables))
    return out
