"""Statistics across seeds: t confidence intervals, paired comparisons, Holm's correction.

Pure functions of numbers and DataFrames; scipy is imported inside them, so importing this
module (and so `sweeplab --help`) does not load scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

LEVEL = 0.95  # confidence level of every interval
ALPHA = 0.05  # significance level of the paired comparisons, after Holm's correction


@dataclass(frozen=True)
class Interval:
    """A mean and its t-based confidence interval over n values (low = high = None for n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int


def mean_ci(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of values with Student's t interval (small n: seeds are few).

    Args:
        values: finite numbers, e.g. one accuracy per seed.
        level: confidence level.
    Returns:
        Interval; no bounds when fewer than 2 values.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(xs) / n
    if n < 2:
        return Interval(mean, None, None, n)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(half_width(sd, n, level))  # type: ignore[arg-type]  # n >= 2
    return Interval(mean, mean - half, mean + half, n)


def half_width(std: float, n: int, level: float = LEVEL) -> float | None:
    """Half-width of the t interval of a mean of n values with sample std `std` (None: n < 2)."""
    from scipy.special import stdtrit

    if n < 2 or std is None or math.isnan(std):
        return None
    return float(stdtrit(n - 1, 0.5 + level / 2)) * std / math.sqrt(n)


@dataclass(frozen=True)
class Paired:
    """A paired comparison: mean difference (a - b), its interval and the two-sided t-test p."""

    diff: Interval
    p: float | None  # None for n < 2, or when every difference is the same (no spread)


def paired(
    a: Sequence[float],
    b: Sequence[float],
    level: float = LEVEL,
    alternative: str = "two-sided",
) -> Paired:
    """Paired t-test of a against b (a[i] and b[i] share a dense model: the same seed).

    Args:
        a: one value per pair.
        b: the baseline's value of the same pairs, in the same order.
        level: confidence level of the (two-sided) interval.
        alternative: "two-sided", or "greater" / "less" for the one-sided claim that the mean
            of a - b is above / below 0 (an ordering claim stated before the data were seen).
    Returns:
        Paired; p is None when it is undefined (fewer than 2 pairs or zero spread).
    """
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired needs as many values on both sides, got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    interval = mean_ci(diffs, level)
    # Equal differences up to float noise (accuracies are counts over at most 1e6 examples)
    # have no spread: the t statistic would be noise over noise.
    if len(diffs) < 2 or max(diffs) - min(diffs) <= 1e-12:
        return Paired(interval, None)
    return Paired(interval, float(stats.ttest_rel(a, b, alternative=alternative).pvalue))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None entries are not tested).

    Returns:
        Adjusted p-values, same order; reject where adjusted <= alpha.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare(
    ok: pd.DataFrame,
    baseline: str,
    keys: Sequence[str],
    metric: str = "acc_finetuned_test",
    series: str = "series",
    level: float = LEVEL,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Every series against `baseline` at each point, paired on the dense model.

    Two runs pair when they share the point's keys (e.g. data, model, requested sparsity,
    round) and the dense model (dense_id: same data, model, recipe and seed). Holm's
    correction runs over every cell of the returned table.

    Args:
        ok: ok rows with columns `series`, `dense_id`, metric and keys.
        baseline: the series every other is compared with.
        keys: columns that define a point.
        metric: the compared column (fractions for accuracies).
        series: the column naming each row's series.
        level: confidence level.
        alpha: significance level after correction.
    Returns:
        One line per (point, series): n, diff, low, high, p, p_holm, significant.
    """
    columns = [*keys, series, "n", "diff", "low", "high", "p", "p_holm", "significant"]
    base = ok[ok[series] == baseline]
    out = []
    for point, rows in ok[ok[series] != baseline].groupby([*keys, series], dropna=False):
        point = point if isinstance(point, tuple) else (point,)
        mask = pd.Series(True, index=base.index)
        for key, value in zip(keys, point[: len(keys)], strict=True):
            mask &= base[key].isna() if pd.isna(value) else base[key] == value
        pairs = rows.merge(base[mask], on="dense_id", suffixes=("", "_base"))
        pairs = pairs.dropna(subset=[metric, f"{metric}_base"])
        if pairs.empty:
            continue
        result = paired(list(pairs[metric]), list(pairs[f"{metric}_base"]), level)
        d = result.diff
        out.append([*point, d.n, d.mean, d.low, d.high, result.p])
    table = pd.DataFrame(out, columns=columns[:-2])
    table["p_holm"] = holm([None if pd.isna(p) else p for p in table["p"]])
    table["significant"] = [p is not None and p <= alpha for p in table["p_holm"]]
    return table
