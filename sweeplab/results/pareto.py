"""Pareto fronts of accuracy against a cost, and the best point within Δ of dense accuracy."""

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


def mark_fronts(points: pd.DataFrame, groups: list[str], costs: list[str]) -> None:
    """Add each cost's front flag (FRONT[cost]) to points, one front per group."""
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


def mark_best(points: pd.DataFrame, groups: list[str], delta: float) -> None:
    """Flag (column best) each series' most compressed point within delta accuracy points of
    its own dense model, on the validation split (drop_val); tables report its test accuracy."""
    points["best"] = False
    pruned = points[~is_dense(points["series"]) & (points["drop_val"] <= delta / 100 + 1e-12)]
    if len(pruned):
        ranked = pruned.sort_values(["compression", "acc_val"], ascending=False)
        points.loc[ranked.drop_duplicates(groups + ["series"]).index, "best"] = True
