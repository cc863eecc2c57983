"""Pareto fronts of accuracy against a cost, and the best point within Δ of dense accuracy.

Counted costs (parameters, MACs, bytes) are exact. Latency is measured with noise: its front
compares intervals (spread.py), so a difference inside the spread never decides a mark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sweeplab.results.series import is_dense

# Costs a Pareto front can be taken against: name -> (pruned metric, dense metric).
COSTS = {
    "params": ("params_nonzero", "params_total"),
    "flops": ("flops", "flops_dense"),
    "latency": ("latency_b1_ms", "latency_b1_dense_ms"),
    "size": ("size_bytes", "size_dense_bytes"),
}
# The points-table column that flags each cost's front.
FRONT = {"params": "pareto", "flops": "pareto_flops", "latency": "pareto_latency",
         "size": "pareto_size"}  # fmt: skip
# Measured costs: name -> the points-table columns of the interval around the figure. A point
# without a known interval (rows that recorded no spread) is on no front of that cost.
INTERVALS = {"latency": ("latency_lo", "latency_hi")}


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


def interval_front(lo: Sequence[float], hi: Sequence[float], gain: Sequence[float]) -> np.ndarray:
    """Boolean mask of points no other point dominates, each cost known only as an interval.

    j dominates i when it is not clearly dearer (lo_j <= hi_i), gains at least as much, and is
    clearly better in one: its cost interval lies wholly below i's (hi_j < lo_i) or it gains
    more. Overlapping intervals are a tie on cost, so noise inside the spread decides no mark.
    With lo == hi this is pareto_front.

    Args:
        lo, hi: bounds of each point's cost interval (lower is better), lo <= hi.
        gain: higher is better (e.g. accuracy).
    Returns:
        bool array, True on the front.
    """
    a, b = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    g = np.asarray(gain, dtype=float)
    # [i, j]: about point j as a rival of point i.
    not_dearer = a[None, :] <= b[:, None]
    cheaper = b[None, :] < a[:, None]
    ge = g[None, :] >= g[:, None]
    return ~(not_dearer & ge & (cheaper | (g[None, :] > g[:, None]))).any(axis=1)


def mark_fronts(points: pd.DataFrame, groups: list[str], costs: list[str]) -> None:
    """Add each cost's front flag (FRONT[cost]) to points, one front per group; a measured
    cost (INTERVALS) compares the intervals of the points that have one."""
    codes = points.groupby(groups, dropna=False, sort=False).ngroup().to_numpy()
    acc = points["acc"].to_numpy(dtype=float)
    for name in costs:
        cost = points["nonzero" if name == "params" else name].to_numpy(dtype=float)
        bounds = INTERVALS.get(name)
        lo, hi = (cost, cost) if bounds is None else (points[bounds[0]], points[bounds[1]])
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        valid = ~np.isnan(lo) & ~np.isnan(hi) & ~np.isnan(cost) & ~np.isnan(acc)
        flags = np.zeros(len(points), dtype=bool)
        for code in np.unique(codes):
            idx = np.flatnonzero((codes == code) & valid)
            if len(idx) and bounds is None:
                flags[idx] = pareto_front(cost[idx], acc[idx])
            elif len(idx):
                flags[idx] = interval_front(lo[idx], hi[idx], acc[idx])
        points[FRONT[name]] = flags


def mark_best(points: pd.DataFrame, groups: list[str], delta: float) -> None:
    """Flag (column best) each series' most compressed point within delta accuracy points of
    its own dense model, on the validation split (drop_val); tables report its test accuracy."""
    points["best"] = False
    pruned = points[~is_dense(points["series"]) & (points["drop_val"] <= delta / 100 + 1e-12)]
    if len(pruned):
        ranked = pruned.sort_values(["compression", "acc_val"], ascending=False)
        points.loc[ranked.drop_duplicates(groups + ["series"]).index, "best"] = True
