"""Text of one value: table cells, the engine's progress line, the thread-count note.

Accuracies and sparsities are fractions in [0, 1] everywhere; cells show them in percent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

MISSING = "—"  # a cell whose value was not measured


def missing(value: Any) -> bool:
    """True for None and NaN (a metric the run did not record)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: Any) -> str:
    """A fraction as percent with 2 decimals: 0.9512 -> "95.12"."""
    return MISSING if missing(value) else f"{100 * value:.2f}"


def pct_ci(mean: Any, std: Any, n: int) -> str:
    """Mean ± the half-width of its 95% t interval over n seeds, in percent; the mean alone
    for one seed."""
    from sweeplab.results.stats import half_width

    half = None if missing(mean) or missing(std) else half_width(float(std), int(n))
    return pct(mean) if half is None else f"{pct(mean)} ± {100 * half:.2f}"


def num(value: Any, spec: str) -> str:
    """format(value, spec), or the missing mark."""
    return MISSING if missing(value) else format(value, spec)


def si(value: Any) -> str:
    """A count with an SI suffix and 3 significant digits: 2.7e5 -> "270k"."""
    if missing(value):
        return MISSING
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def size(value: Any) -> str:
    """Bytes in binary units: 3e6 -> "2.86 MiB"."""
    if missing(value):
        return MISSING
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def fraction(value: Any) -> str:
    """A fraction with 4 decimals, as the progress line prints it: "n/a" when not measured."""
    return "n/a" if missing(value) else f"{value:.4f}"


def thread_counts(threads: Iterable[Any]) -> str | None:
    """The torch thread counts rows trained with, e.g. "2 (every row)" or "1 (19 rows),
    2 (26 rows): results can differ across thread counts"; None when no row recorded one.

    Float sums reduce in a thread-dependent order, so a table built from rows of mixed counts
    may not match a fresh run at either count.

    Args:
        threads: each row's `threads` (None or NaN: not recorded).
    """
    counts = Counter(None if missing(t) else int(t) for t in threads)
    if set(counts) <= {None}:
        return None
    if len(counts) == 1:
        return f"{next(iter(counts))} (every row)"
    parts = [
        f"{'not recorded' if t is None else t} ({n} row{'s' * (n != 1)})"
        for t, n in sorted(counts.items(), key=lambda tn: (tn[0] is None, tn[0] or 0))
    ]
    mixed = len(set(counts) - {None}) > 1
    return ", ".join(parts) + (": results can differ across thread counts" if mixed else "")
