"""Measured figures with their spread: row quartiles, a point's interval, and its cell text.

A row records each latency figure (sweeplab.engine.latency) as the median of its timed
samples with the 25th and 75th percentiles (`<figure>_q25[_ms]`, `<figure>_q75[_ms]`). A
point's interval is the union of its runs' quartile ranges (seeds measured at different
times add their drift). A figure whose row has no quartiles (rows written before they were
recorded) has an unknown spread: its interval is unbounded, and the point's bounds are NaN.
pandas only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeplab.results.format import MISSING, missing, num

# Row figure -> its (25th, 75th percentile) row metrics.
QUARTILES = {
    "latency_b1_ms": ("latency_b1_q25_ms", "latency_b1_q75_ms"),
    "latency_b1_dense_ms": ("latency_b1_dense_q25_ms", "latency_b1_dense_q75_ms"),
    "speedup_measured": ("speedup_measured_q25", "speedup_measured_q75"),
}
QUARTILE_COLUMNS = tuple(c for pair in QUARTILES.values() for c in pair)


def row_bounds(rows: pd.DataFrame, figure: str) -> tuple[pd.Series, pd.Series]:
    """Each row's interval around figure: its quartiles; (-inf, inf) where the figure was
    measured without them (unknown spread); NaN where the figure is missing.

    Args:
        rows: rows with numeric figure and quartile columns (absent columns count as NaN).
        figure: a key of QUARTILES.
    Returns:
        (lower, upper) as float Series aligned with rows.
    """
    nan = pd.Series(np.nan, index=rows.index, dtype=float)
    value = rows[figure].astype(float) if figure in rows else nan
    lo_col, hi_col = QUARTILES[figure]
    lo = rows[lo_col].astype(float) if lo_col in rows else nan
    hi = rows[hi_col].astype(float) if hi_col in rows else nan
    unknown = value.notna() & (lo.isna() | hi.isna())
    return lo.mask(unknown, -np.inf), hi.mask(unknown, np.inf)


def known(bound: pd.Series) -> pd.Series:
    """A point's bound with unknown spreads (infinite) made NaN: no interval to show or use."""
    return bound.astype(float).replace([np.inf, -np.inf], np.nan)


def ranged(value: Any, lo: Any, hi: Any, spec: str, suffix: str = "") -> str:
    """A figure with its interval: "0.0431 [0.0425, 0.0440]"; the figure alone when the interval
    is unknown.

    Args:
        value, lo, hi: the figure and its lower and upper bounds (None or NaN: missing).
        spec: format spec of all three, e.g. ".3g".
        suffix: unit after the figure, e.g. "x".
    """
    if missing(value):
        return MISSING
    text = num(value, spec) + suffix
    if missing(lo) or missing(hi):
        return text
    return f"{text} [{num(lo, spec)}, {num(hi, spec)}]"
