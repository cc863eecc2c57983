"""Aggregates derived from long-format rows: seed statistics, Pareto fronts, tables.

pandas only: `sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError

GROUP = ["data", "model"]
POINT = ["strategy", "sparsity_requested"]
# Column order of the summary (and so of CSV/JSON output).
COLUMNS = [*GROUP, "strategy", "scope", "sparsity_requested", "sparsity", "compression",
           "nonzero", "acc_pruned", "acc", "acc_std", "n", "pareto"]  # fmt: skip


def pareto_front(cost: Sequence[float], gain: Sequence[float]) -> np.ndarray:
    """Boolean mask of points no other point dominates (cost <= and gain >=, one strictly).

    Args:
        cost: lower is better (e.g. nonzero parameters).
        gain: higher is better (e.g. accuracy).
    Returns:
        bool array, True on the front.
    """
    c, g = np.asarray(cost, dtype=float), np.asarray(gain, dtype=float)
    le = c[None, :] <= c[:, None]  # le[i, j]: j costs no more than i
    ge = g[None, :] >= g[:, None]
    strict = (c[None, :] < c[:, None]) | (g[None, :] > g[:, None])
    return ~(le & ge & strict).any(axis=1)


def filter_rows(df: pd.DataFrame, where: Sequence[str]) -> pd.DataFrame:
    """Keep rows matching every `key=value` (e.g. data=mnist, seed=0, sparsity_requested=0.9)."""
    for clause in where:
        key, sep, value = clause.partition("=")
        if not sep:
            raise SweeplabError(f"--where {clause!r} is not key=value; e.g. --where data=mnist")
        if key not in df.columns:
            raise SweeplabError(f"--where {key}: no such column; choose from {sorted(df.columns)}")
        column = df[key]
        try:
            # Numeric columns compare as numbers: seed=1 matches 1 and 1.0 alike.
            match = column == float(value) if pd.api.types.is_numeric_dtype(column) else None
        except ValueError:
            match = None
        df = df[match if match is not None else column.astype(str) == value]
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (data, model, strategy, sparsity): seed mean/std/n plus the dense baseline.

    The dense baseline appears as strategy "dense" at sparsity 0 and compression 1, averaged
    over the distinct dense models (one per seed). `pareto` marks points on the front of test
    accuracy after finetune against nonzero parameters, within each (data, model).
    """
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    points = (
        ok.groupby(GROUP + POINT, dropna=False)
        .agg(
            scope=("scope", "first"),
            compression=("compression", "mean"),
            nonzero=("params_nonzero", "mean"),
            sparsity=("sparsity_achieved", "mean"),
            acc_pruned=("acc_pruned_test", "mean"),
            acc=("acc_finetuned_test", "mean"),
            acc_std=("acc_finetuned_test", "std"),
            n=("acc_finetuned_test", "size"),
        )
        .reset_index()
    )
    dense = (
        ok.drop_duplicates("dense_id")
        .groupby(GROUP)
        .agg(
            nonzero=("params_total", "mean"),
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "size"),
        )
        .reset_index()
        .assign(strategy="dense", sparsity_requested=0.0, scope="-", compression=1.0, sparsity=0.0)
    )
    dense["acc_pruned"] = dense["acc"]
    table = pd.concat([dense, points], ignore_index=True)
    table["acc_std"] = table["acc_std"].fillna(0.0)
    table["pareto"] = False
    for _, idx in table.groupby(GROUP).groups.items():
        sub = table.loc[idx]
        table.loc[idx, "pareto"] = pareto_front(sub["nonzero"], sub["acc"])
    order = table["strategy"].ne("dense")  # dense first within each group
    return (
        table.assign(_o=order)
        .sort_values(GROUP + ["_o", "strategy", "sparsity_requested"])
        .reset_index(drop=True)[COLUMNS]
    )


def _pct(mean: float, std: float, n: int) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if n > 1 else f"{100 * mean:.2f}"


def to_markdown(summary: pd.DataFrame) -> str:
    """Markdown, one table per (data, model); * marks the Pareto front."""
    headers = [
        "strategy",
        "sparsity",
        "achieved",
        "compression",
        "nonzero params",
        "acc pruned %",
        "acc finetuned %",
        "n",
        "pareto",
    ]
    blocks = []
    for (data, model), sub in summary.groupby(GROUP, sort=True):
        lines = [
            f"### {data} / {model}",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        ]
        for r in sub.itertuples():
            cells = [
                r.strategy,
                f"{r.sparsity_requested:.3g}",
                f"{r.sparsity:.4f}",
                f"{r.compression:.1f}x",
                f"{r.nonzero:,.0f}",
                f"{100 * r.acc_pruned:.2f}",
                _pct(r.acc, r.acc_std, r.n),
                str(r.n),
                "*" if r.pareto else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return (
        "\n\n".join(blocks)
        + "\n\nacc: test accuracy; * = on the Pareto front of accuracy vs nonzero parameters "
        "(all parameters, biases included)\n"
    )


def render(summary: pd.DataFrame, fmt: str) -> str:
    """The summary as md, csv or json text."""
    if fmt == "md":
        return to_markdown(summary)
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "json":
        return json.dumps(summary.to_dict(orient="records"), indent=1) + "\n"
    raise SweeplabError(f"--format {fmt!r} is not one of md, csv, json")
