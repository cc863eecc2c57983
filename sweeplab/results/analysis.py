"""Aggregates derived from rows: seed statistics per point, dense baselines, fronts, best within Δ.

Rows come from rows.load_rows; tables.py formats what summarize returns. pandas only:
`sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results.filters import columns_hint
from sweeplab.results.pareto import COSTS, FRONT, mark_best, mark_fronts
from sweeplab.results.sensitivity import ordinary
from sweeplab.results.series import DENSE, LABEL_COLUMNS, card_labels, is_dense, natural_rank
from sweeplab.results.spread import QUARTILE_COLUMNS, known, row_bounds

GROUP = ["data", "model"]
DEFAULT_DELTA = 1.0  # accuracy points (of 100) a run may lose against its own dense model
# Column order of the points table (and so of CSV/JSON output) after the group columns; the
# Pareto flags of the measured costs go before "best".
POINT_COLUMNS = ["series", "strategy", "scope", "schedule", "recovery", "sparsity_requested",
                 "round", "sparsity", "compression", "nonzero", "flops", "speedup", "latency",
                 "latency_lo", "latency_hi", "speedup_measured", "speedup_measured_lo",
                 "speedup_measured_hi", "size", "acc_pruned", "acc_pruned_std", "acc", "acc_std",
                 "acc_reinit", "n", "acc_dense", "drop", "drop_std", "drop_val", "best",
                 "run_ids"]  # fmt: skip
# Metrics the aggregates read: a row may lack any of them (not measured), or hold only nulls.
_NUMERIC = ("round", "sparsity_requested", "sparsity_achieved", "params_total", "params_nonzero",
            "compression", "acc_dense_test", "acc_pruned_test", "acc_finetuned_test",
            "acc_dense_val", "acc_finetuned_val", "acc_reinit_test",
            "speedup_measured", *QUARTILE_COLUMNS,
            *(c for pair in COSTS.values() for c in pair))  # fmt: skip
# Measured figures whose points carry an interval (spread.py): point column -> row figure.
_INTERVALS = {"latency": "latency_b1_ms", "speedup_measured": "speedup_measured"}
_ENDS = {"lo": "min", "hi": "max"}  # a point's interval: the union of its runs' intervals


@dataclass
class Summary:
    """Every aggregate of a set of rows; tables and the report are views of it."""

    points: pd.DataFrame  # one line per (group, series, sparsity, round), dense points included
    series_dense: pd.DataFrame  # each series' own dense baseline: group, series, acc, acc_std, n
    groups: list[str]  # data, model and the --by columns
    costs: list[str]  # cost names (keys of COSTS) that the rows measured
    delta: float  # accuracy points for "best compression within delta"
    failed: int = 0  # failed rows left out
    # the ok runs behind the points, each with its `series` label (paired comparisons)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)


def _lists(codes: np.ndarray, values: pd.Series, n: int) -> list[list[Any]]:
    # A Python list per group, as groupby(...).agg(list) gives, without its per-group overhead.
    out: list[list[Any]] = [[] for _ in range(n)]
    for code, value in zip(codes, values, strict=True):
        out[code].append(value)
    return out


def summarize(df: pd.DataFrame, by: Sequence[str] = (), delta: float = DEFAULT_DELTA) -> Summary:
    """Seed statistics per point, the dense baselines, Pareto fronts and the best point within Δ.

    A point is one (group, series, requested sparsity, round); a series is a strategy, split
    by any config key that varies within it in its card (`global_magnitude [finetune.epochs=5]`),
    so seeds are only pooled across runs that differ in nothing else. Dense models appear as
    series "dense" (strategy "dense" unless it is a --by column) at compression 1, averaged
    over the distinct dense models.

    Args:
        df: rows from load_rows, possibly filtered (filters.filter_rows).
        by: extra grouping columns (each value gets its own tables).
        delta: accuracy points a run may lose against its own dense model to count as "best".
    Returns:
        Summary; its points are empty when no row is ok.
    """
    df = ordinary(df)  # sensitivity rows are curves, not runs (results.sensitivity)
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
    for column in LABEL_COLUMNS:
        if column not in ok.columns:
            ok[column] = np.nan
    for column in _NUMERIC:
        # Columns that are null in every row load as objects; aggregates need numbers.
        ok[column] = pd.to_numeric(ok[column], errors="coerce") if column in ok else np.nan
    ok["_drop"] = ok["acc_dense_test"] - ok["acc_finetuned_test"]
    # "Best within Δ" selects on validation accuracy and reports test accuracy: selecting on
    # test would report a maximum over noisy test numbers (rows without val fall back to test).
    ok["_drop_val"] = (ok["acc_dense_val"] - ok["acc_finetuned_val"]).fillna(ok["_drop"])
    ok["_speedup"] = ok["flops_dense"] / ok["flops"]
    for name, figure in {**_INTERVALS, "dense_latency": "latency_b1_dense_ms"}.items():
        ok[f"_{name}_lo"], ok[f"_{name}_hi"] = row_bounds(ok, figure)
    # Rows carry no dense parameter count: params_total counts the pruned model, which a
    # structured pruner makes smaller. compression = dense total / max(nonzero, 1) (measure.py),
    # so the dense count is derived from it; rows without compression keep params_total.
    derived = (ok["compression"] * ok["params_nonzero"].clip(lower=1)).round()
    ok["_params_dense"] = derived.fillna(ok["params_total"])
    ok["series"], ok["_dense"] = card_labels(ok, groups)

    agg: dict[str, tuple[str, Any]] = dict(
        strategy=("strategy", "first"), scope=("scope", "first"),
        schedule=("schedule", "first"), recovery=("recovery", "first"),
        sparsity=("sparsity_achieved", "mean"), compression=("compression", "mean"),
        nonzero=("params_nonzero", "mean"), flops=("flops", "mean"),
        latency=("latency_b1_ms", "mean"), size=("size_bytes", "mean"),
        speedup=("_speedup", "mean"), speedup_measured=("speedup_measured", "mean"),
        **{f"{n}_{end}": (f"_{n}_{end}", f) for n in _INTERVALS for end, f in _ENDS.items()},
        acc_pruned=("acc_pruned_test", "mean"), acc_pruned_std=("acc_pruned_test", "std"),
        acc=("acc_finetuned_test", "mean"), acc_std=("acc_finetuned_test", "std"),
        n=("acc_finetuned_test", "count"), acc_dense=("acc_dense_test", "mean"),
        drop=("_drop", "mean"), drop_std=("_drop", "std"), drop_val=("_drop_val", "mean"),
        acc_val=("acc_finetuned_val", "mean"), acc_reinit=("acc_reinit_test", "mean"),
    )  # fmt: skip
    # A --by label column (schedule, strategy, ...) is a group key already, not an aggregate.
    agg = {name: spec for name, spec in agg.items() if name not in groups}
    keys = list(dict.fromkeys([*groups, "series", "sparsity_requested", "round"]))
    grouped = ok.groupby(keys, dropna=False, sort=False)
    points = grouped.agg(**agg).reset_index()
    points["run_ids"] = _lists(grouped.ngroup().to_numpy(), ok["run_id"], len(points))

    # Runs that trained sparse from initialization (static, SET, RigL) share their dense_id
    # (data, model, recipe, seed) but have no dense model: they must not stand for it.
    models = ok[ok["acc_dense_test"].notna()].drop_duplicates([*groups, "dense_id"])
    dense = (
        models.groupby([*groups, "_dense"], dropna=False, sort=False)
        .agg(
            nonzero=("_params_dense", "mean"),
            flops=("flops_dense", "mean"),
            latency=("latency_b1_dense_ms", "mean"),
            latency_lo=("_dense_latency_lo", "min"),
            latency_hi=("_dense_latency_hi", "max"),
            size=("size_dense_bytes", "mean"),
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "count"),
            run_ids=("dense_id", list),
        )  # fmt: skip
        .reset_index()
        .rename(columns={"_dense": "series"})
    )
    dense = dense[dense["n"] > 0]
    constants = dict(
        strategy=DENSE, scope="-", sparsity_requested=0.0, sparsity=0.0, compression=1.0,
        speedup=1.0, acc_pruned=dense["acc"], acc_pruned_std=dense["acc_std"],
        acc_dense=dense["acc"], drop=0.0, drop_std=0.0, drop_val=0.0,
    )  # fmt: skip
    # Under --by strategy (or scope) a dense point keeps its group's value: it is the
    # baseline of that group's table.
    dense = dense.assign(**{k: v for k, v in constants.items() if k not in groups})
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
    for column in (f"{n}_{end}" for n in _INTERVALS for end in _ENDS):
        points[column] = known(points[column])
    mark_fronts(points, groups, costs)
    mark_best(points, groups, delta)
    rank = natural_rank(points["series"])
    points = (
        # Dense first within each group, then series in natural order (epochs=2 before 10).
        points.assign(_o=~is_dense(points["series"]), _s=points["series"].map(rank))
        .sort_values(list(dict.fromkeys([*groups, "_o", "_s", "sparsity_requested", "round"])))
        .drop(columns=["_o", "_s"])
        .reset_index(drop=True)
    )
    unused = {c for c in ("round", "speedup_measured", "acc_reinit") if points[c].isna().all()}
    unused |= {c for c in ("flops", "latency", "size") if c not in costs}
    unused |= {f"{n}_{end}" for n in _INTERVALS for end in _ENDS if n in unused}
    unused |= {"speedup"} if "flops" not in costs else set()
    columns = [*groups, *(c for c in POINT_COLUMNS if c not in unused and c not in groups)]
    at = columns.index("best")
    columns[at:at] = [FRONT[c] for c in costs]
    return Summary(points[columns], series_dense, groups, costs, delta, failed, runs=ok)


def best_within(summary: Summary) -> pd.DataFrame:
    """Per (group, series): the most compressed point within Δ of its own dense accuracy.

    A series with no such point gets a line with best=False: its smallest accuracy drop.
    """
    pts = summary.points
    if pts.empty:
        return pts
    pruned = pts[~is_dense(pts["series"])]
    best = pruned[pruned["best"]]
    missing = pruned[~pruned.set_index([*summary.groups, "series"]).index.isin(
        best.set_index([*summary.groups, "series"]).index
    )]  # fmt: skip
    closest = missing.sort_values("drop_val").drop_duplicates([*summary.groups, "series"])
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
    pruned = pts[~is_dense(pts["series"])].copy()
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
