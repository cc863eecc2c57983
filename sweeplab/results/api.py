"""The Python API for notebooks: the rows, tables and plots of `sweeplab table` / `report`.

    import sweeplab
    rows = sweeplab.load_rows("results", where={"data": "mnist", "seed": [0, 1, 2]})
    print(sweeplab.table(rows, view="compare", baseline="layer_magnitude"))
    summary = sweeplab.summarize(rows)        # .points: one row per (series, sparsity)
    sweeplab.plot(rows, "plots/")             # PNG + SVG, as `sweeplab report` draws them

pandas only; nothing read from a row is executed (rows are data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sweeplab.results.analysis import Summary

Where = Mapping[str, Any] | Sequence[str] | None


def _clauses(where: Where) -> list[str]:
    from sweeplab.results.filters import clauses

    if where is None:
        return []
    if isinstance(where, Mapping):
        return clauses(where)
    if isinstance(where, str):
        return [where]
    return [str(w) for w in where]


def load_rows(results_dir: str | Path = "results", where: Where = None) -> pd.DataFrame:
    """The rows of a results dir as one DataFrame, with `sweeplab table --where`'s filter.

    Args:
        results_dir: the folder holding runs/.
        where: {key: value or [values]} or `key=v1,v2` clauses, e.g. {"strategy": "random"} or
            ["data=mnist", "seed=0,1"]; any row column or dotted config key (train.lr).
    Returns:
        One row per run (ok and failed: see the status column), the columns `table` reads.
    """
    from sweeplab.results.filters import filter_rows
    from sweeplab.results.rows import load_rows as read

    return filter_rows(read(results_dir), _clauses(where))


def summarize(rows: pd.DataFrame, by: Sequence[str] = (), delta: float = 1.0) -> Summary:
    """The aggregates every table and plot is drawn from (see results.analysis.Summary).

    Args:
        rows: from load_rows (failed rows are counted, not aggregated).
        by: extra grouping columns besides data and model (like --by).
        delta: accuracy points a run may lose for "best compression within delta".
    """
    from sweeplab.errors import SweeplabError
    from sweeplab.results.analysis import summarize as aggregate

    summary = aggregate(rows, by=list(by), delta=delta)
    if summary.points.empty:
        raise SweeplabError("no finished (status ok) rows to summarize; check where= or status")
    return summary


def table(
    rows: pd.DataFrame,
    view: str = "all",
    fmt: str = "md",
    baseline: str | None = None,
    by: Sequence[str] = (),
    delta: float = 1.0,
    pivot: str = "sparsity",
) -> str:
    """The text `sweeplab table` prints for these rows.

    Args:
        rows: from load_rows.
        view: all | pivot | points | best | compare.
        fmt: md | csv | latex | json.
        baseline: the strategy (or series label) the compare view pairs with.
        by, delta: as in summarize; pivot: "sparsity" or "compression" columns.
    """
    from sweeplab.results.render import render

    return render(summarize(rows, by, delta), fmt, view, pivot, baseline)


def plot(rows: pd.DataFrame, out_dir: str | Path, by: Sequence[str] = ()) -> list[Path]:
    """Write the report's plots (PNG and SVG) of these rows into out_dir; returns the files."""
    from sweeplab.results.plots import write_plots
    from sweeplab.results.sensitivity import ordinary

    ok = ordinary(rows[rows["status"] == "ok"])
    return write_plots(summarize(rows, by), ok, out_dir)
