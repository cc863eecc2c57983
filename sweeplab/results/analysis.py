"""Aggregates derived from long-format rows: filters, seed statistics, Pareto fronts, best within Δ.

Rows come from rowindex.load_rows; tables.py formats what summarize returns. pandas only:
`sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.results import identity
from sweeplab.results import store
from sweeplab.errors import SweeplabError
from sweeplab.results.filters import columns_hint

GROUP = ["data", "model"]
DEFAULT_DELTA = 1.0  # accuracy points (of 100) a run may lose against its own dense model
# Costs a Pareto front can be taken against: name -> (pruned column, dense column).
COSTS = {
    "params": ("params_nonzero", "params_total"),
    "flops": ("flops", "flops_dense"),
    "latency": ("latency_b1_ms", "latency_b1_dense_ms"),
    "size": ("size_bytes", "size_dense_bytes"),
}
FRONT = {"params": "pareto", "flops": "pareto_flops", "latency": "pareto_latency",
         "size": "pareto_size"}  # fmt: skip
# Column order of the points table (and so of CSV/JSON output) after the group columns; the
# Pareto flags of the measured costs go before "best".
POINT_COLUMNS = ["series", "strategy", "scope", "schedule", "recovery", "sparsity_requested",
                 "round", "sparsity", "compression", "nonzero", "flops", "speedup", "latency",
                 "speedup_measured", "size", "acc_pruned", "acc_pruned_std", "acc", "acc_std",
                 "n", "acc_dense", "drop", "drop_std", "best", "run_ids"]  # fmt: skip


# Row columns a series label may carry when they vary within one strategy.
_LABEL_COLUMNS = ("scope", "schedule", "recovery", "granularity")
# Config keys that never split a series: the point's own coordinates, or not part of identity.
_NOT_SERIES = ("pruning.name", "pruning.sparsity", "data.name", "model.name")
_NUMERIC = ("round", "sparsity_requested", "sparsity_achieved", "params_total", "params_nonzero",
            "compression", "acc_dense_test", "acc_pruned_test", "acc_finetuned_test",
            "speedup_measured", *(c for pair in COSTS.values() for c in pair))  # fmt: skip
_DENSE_SECTIONS = tuple(f"{k}." for k in identity.DENSE_KEYS)


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


@dataclass
class Summary:
    """Every aggregate of a set of rows; tables and the report are views of it."""

    points: pd.DataFrame  # one line per (group, series, sparsity, round), dense points included
    series_dense: pd.DataFrame  # each series' own dense baseline: group, series, acc, acc_std, n
    groups: list[str]  # data, model and the --by columns
    costs: list[str]  # cost names (keys of COSTS) that the rows measured
    delta: float  # accuracy points for "best compression within delta"
    failed: int = 0  # failed rows left out


def _series_keys(ok: pd.DataFrame, groups: list[str], within: list[str], dense: bool) -> list[str]:
    """Columns that vary inside one (group, strategy): they split it into several series."""
    candidates = [
        c
        for c in ok.columns
        if c not in groups
        and c not in _NOT_SERIES
        and (c in _LABEL_COLUMNS if "." not in c else not c.startswith("trainer."))
        and c.rsplit(".", 1)[-1] not in identity.IGNORED_KEYS
        and (not dense or c.startswith(_DENSE_SECTIONS))
    ]
    if not candidates:
        return []
    counts = ok.groupby(within, dropna=False)[candidates].nunique(dropna=True)
    return [c for c in candidates if (counts[c] > 1).any()]


def _labels(ok: pd.DataFrame, head: Iterable[str], keys: list[str]) -> list[str]:
    if not keys:
        return list(head)
    out = []
    for name, *values in zip(head, *(ok[k] for k in keys), strict=True):
        shown = zip(keys, values, strict=True)
        extra = ", ".join(f"{k}={value_label(v)}" for k, v in shown if _set(v))
        out.append(f"{name} [{extra}]" if extra else name)
    return out


def _set(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def value_label(value: Any) -> str:
    """A config value as series labels and group titles show it (floats in %g)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def natural_rank(labels: Iterable[str]) -> dict[str, int]:
    """Rank of each label in natural order: numbers inside compare as numbers."""

    def key(label: str) -> list[tuple[int, Any]]:
        parts = re.split(r"(\d+(?:\.\d+)?)", str(label))
        return [(1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts)]

    return {label: i for i, label in enumerate(sorted(set(labels), key=key))}


def _lists(codes: np.ndarray, values: pd.Series, n: int) -> list[list[Any]]:
    # A Python list per group, as groupby(...).agg(list) gives, without its per-group overhead.
    out: list[list[Any]] = [[] for _ in range(n)]
    for code, value in zip(codes, values, strict=True):
        out[code].append(value)
    return out


def _mark_fronts(points: pd.DataFrame, groups: list[str], costs: list[str]) -> None:
    codes = points.groupby(groups, dropna=False, sort=False).ngroup().to_numpy()
    acc = points["acc"].to_numpy(dtype=float)
    for name in costs:
        cost = points["nonzero" if name == "params" else name].to_numpy(dtype=float)
        valid = ~np.isnan(cost) & ~np.isnan(acc)
        flags = np.zeros(len(points), dtype=bool)
        for code in np.unique(codes):
            idx = np.flatnonzero((codes == code) & valid)
            if len(idx):
                flags[idx] = pareto_front(cost[idx], acc[idx])
        points[FRONT[name]] = flags


def _mark_best(points: pd.DataFrame, groups: list[str], delta: float) -> None:
    points["best"] = False
    pruned = points[(points["strategy"] != "dense") & (points["drop"] <= delta / 100 + 1e-12)]
    if len(pruned):
        ranked = pruned.sort_values(["compression", "acc"], ascending=False)
        points.loc[ranked.drop_duplicates(groups + ["series"]).index, "best"] = True


def summarize(df: pd.DataFrame, by: Sequence[str] = (), delta: float = DEFAULT_DELTA) -> Summary:
    """Seed statistics per point, the dense baselines, Pareto fronts and the best point within Δ.

    A point is one (group, series, requested sparsity, round); a series is a strategy, split
    by any config key that varies within it (e.g. `global_magnitude [finetune.epochs=5]`),
    so seeds are only pooled across runs that differ in nothing else. Dense models appear as
    strategy "dense" at compression 1, averaged over the distinct dense models.

    Args:
        df: rows (load_rows or store.collect), possibly filtered.
        by: extra grouping columns (each value gets its own tables).
        delta: accuracy points a run may lose against its own dense model to count as "best".
    Returns:
        Summary; its points are empty when no row is ok.
    """
    groups = [*GROUP, *(b for b in by if b not in GROUP)]
    for key in groups:
        if key not in df.columns:
            raise SweeplabError(f"--by {key}: no such column; {columns_hint(df)}")
    if not delta >= 0:
        raise SweeplabError(f"--delta {delta} must be >= 0 (accuracy points), e.g. --delta 1")
    ok = df[df["status"] == "ok"].copy()
    failed = int((df["status"] == "failed").sum())
    costs = ["params"] + [
        name for name, (col, _) in list(COSTS.items())[1:]
        if col in ok.columns and ok[col].notna().any()
    ]  # fmt: skip
    if ok.empty:
        return Summary(pd.DataFrame(), pd.DataFrame(), groups, costs, delta, failed)
    for column in _LABEL_COLUMNS:
        if column not in ok.columns:
            ok[column] = np.nan
    for column in _NUMERIC:
        # Columns that are null in every row load as objects; aggregates need numbers.
        ok[column] = pd.to_numeric(ok[column], errors="coerce") if column in ok else np.nan
    ok["_drop"] = ok["acc_dense_test"] - ok["acc_finetuned_test"]
    ok["_speedup"] = ok["flops_dense"] / ok["flops"]
    varying = _series_keys(ok, groups, [*groups, "strategy"], dense=False)
    ok["series"] = _labels(ok, ok["strategy"].astype(str), varying)
    dense_keys = _series_keys(ok, groups, groups, dense=True)
    ok["_dense"] = _labels(ok, ["dense"] * len(ok), dense_keys)

    agg: dict[str, tuple[str, Any]] = dict(
        strategy=("strategy", "first"), scope=("scope", "first"),
        schedule=("schedule", "first"), recovery=("recovery", "first"),
        sparsity=("sparsity_achieved", "mean"), compression=("compression", "mean"),
        nonzero=("params_nonzero", "mean"), flops=("flops", "mean"),
        latency=("latency_b1_ms", "mean"), size=("size_bytes", "mean"),
        speedup=("_speedup", "mean"), speedup_measured=("speedup_measured", "mean"),
        acc_pruned=("acc_pruned_test", "mean"), acc_pruned_std=("acc_pruned_test", "std"),
        acc=("acc_finetuned_test", "mean"), acc_std=("acc_finetuned_test", "std"),
        n=("acc_finetuned_test", "count"), acc_dense=("acc_dense_test", "mean"),
        drop=("_drop", "mean"), drop_std=("_drop", "std"),
    )  # fmt: skip
    keys = [*groups, "series", "sparsity_requested", "round"]
    grouped = ok.groupby(keys, dropna=False, sort=False)
    points = grouped.agg(**agg).reset_index()
    points["run_ids"] = _lists(grouped.ngroup().to_numpy(), ok["run_id"], len(points))

    models = ok.drop_duplicates([*groups, "dense_id"])
    dense = (
        models.groupby([*groups, "_dense"], dropna=False, sort=False)
        .agg(
            nonzero=("params_total", "mean"),
            flops=("flops_dense", "mean"),
            latency=("latency_b1_dense_ms", "mean"),
            size=("size_dense_bytes", "mean"),
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "count"),
            run_ids=("dense_id", list),
        )  # fmt: skip
        .reset_index()
        .rename(columns={"_dense": "series"})
    )
    dense = dense[dense["n"] > 0].assign(
        strategy="dense", scope="-", sparsity_requested=0.0, sparsity=0.0, compression=1.0,
        speedup=1.0, acc_pruned=dense["acc"], acc_pruned_std=dense["acc_std"],
        acc_dense=dense["acc"], drop=0.0, drop_std=0.0,
    )  # fmt: skip
    series_dense = (
        ok.drop_duplicates([*groups, "series", "dense_id"])
        .groupby([*groups, "series"], dropna=False, sort=False)
        .agg(
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "count"),
        )  # fmt: skip
        .reset_index()
    )
    series_dense["acc_std"] = series_dense["acc_std"].fillna(0.0)

    points = pd.concat([dense, points], ignore_index=True)
    for column in ("acc_std", "acc_pruned_std", "drop_std"):
        points[column] = points[column].astype(float).fillna(0.0)
    points["n"] = points["n"].astype(int)
    _mark_fronts(points, groups, costs)
    _mark_best(points, groups, delta)
    rank = natural_rank(points["series"])
    points = (
        # Dense first within each group, then series in natural order (epochs=2 before 10).
        points.assign(_o=points["strategy"].ne("dense"), _s=points["series"].map(rank))
        .sort_values([*groups, "_o", "_s", "sparsity_requested", "round"])
        .drop(columns=["_o", "_s"])
        .reset_index(drop=True)
    )
    unused = {c for c in ("round", "speedup_measured") if points[c].isna().all()}
    unused |= {c for c in ("flops", "latency", "size") if c not in costs}
    unused |= {"speedup"} if "flops" not in costs else set()
    columns = [*groups, *(c for c in POINT_COLUMNS if c not in unused)]
    at = columns.index("best")
    columns[at:at] = [FRONT[c] for c in costs]
    return Summary(points[columns], series_dense, groups, costs, delta, failed)


def best_within(summary: Summary) -> pd.DataFrame:
    """Per (group, series): the most compressed point within Δ of its own dense accuracy.

    A series with no such point gets a line with best=False: its smallest accuracy drop.
    """
    pts = summary.points
    if pts.empty:
        return pts
    pruned = pts[pts["strategy"] != "dense"]
    best = pruned[pruned["best"]]
    missing = pruned[~pruned.set_index([*summary.groups, "series"]).index.isin(
        best.set_index([*summary.groups, "series"]).index
    )]  # fmt: skip
    closest = missing.sort_values("drop").drop_duplicates([*summary.groups, "series"])
    out = pd.concat([best, closest])
    out["_s"] = out["series"].map(natural_rank(out["series"]))
    return out.sort_values([*summary.groups, "_s"]).drop(columns="_s").reset_index(drop=True)


def pivot_cells(summary: Summary, columns: str = "sparsity") -> pd.DataFrame:
    """The strategy x sparsity (or x compression) pivot in long form, dense column first.

    Args:
        summary: from summarize.
        columns: "sparsity" (requested) or "compression" (achieved, 2 significant digits).
    Returns:
        group columns, series, column (label), order, acc, acc_std, n, acc_pruned.
    """
    if columns not in ("sparsity", "compression"):
        raise SweeplabError(f"--pivot {columns!r} is not one of sparsity, compression")
    pts = summary.points
    if pts.empty:
        return pts
    pruned = pts[pts["strategy"] != "dense"].copy()
    if columns == "sparsity":
        pruned["order"] = pruned["sparsity_requested"].astype(float)
        pruned["column"] = [f"{s:g}" for s in pruned["order"]]
    else:
        pruned["order"] = [float(f"{c:.2g}") for c in pruned["compression"]]
        pruned["column"] = [f"{c:g}x" for c in pruned["order"]]
    if "round" in pruned.columns:
        # Iterative schedules: the last round of each series at a column stands for it.
        pruned = pruned.sort_values("round").drop_duplicates(
            [*summary.groups, "series", "column"], keep="last"
        )
    dense = summary.series_dense.assign(
        column="dense", order=-1.0, acc_pruned=summary.series_dense["acc"]
    )
    keep = [*summary.groups, "series", "column", "order", "acc", "acc_std", "n", "acc_pruned"]
    cells = pd.concat([dense[keep], pruned[keep]], ignore_index=True)
    cells["_s"] = cells["series"].map(natural_rank(cells["series"]))
    cells = cells.sort_values([*summary.groups, "_s", "order"]).drop(columns="_s")
    return cells.reset_index(drop=True)
