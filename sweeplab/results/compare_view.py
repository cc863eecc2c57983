"""`sweeplab table --view compare --baseline STRATEGY`: paired differences against a baseline.

Runs pair when they share a point (requested sparsity, round) and a dense model (dense_id:
the same data, model, recipe and seed), so the dense models' own spread cancels out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results.format import MISSING, missing
from sweeplab.results.layout import Table
from sweeplab.results.series import is_dense, value_label
from sweeplab.results.stats import ALPHA, LEVEL, compare

if TYPE_CHECKING:
    from sweeplab.results.analysis import Summary

KEYS = ["sparsity_requested", "round"]  # what a point is, within one table group


def _points(value: float | None) -> str:
    return MISSING if missing(value) else f"{100 * value:+.2f}"


def _p(value: float | None) -> str:
    return MISSING if missing(value) else f"{value:.3g}"


def baseline_series(runs: pd.DataFrame, baseline: str) -> str | None:
    """The series `baseline` names in these runs: a series label, or a strategy that has one
    series here (`random` for `random [finetune]`); None when it names none."""
    series = set(runs["series"])
    if baseline in series:
        return baseline
    named = {s for s, strategy in zip(runs["series"], runs["strategy"], strict=True)
             if strategy == baseline}  # fmt: skip
    return named.pop() if len(named) == 1 else None


def check_baseline(runs: pd.DataFrame, baseline: str | None, groups: list[str]) -> None:
    """Raise SweeplabError unless baseline names a series in at least one group of runs."""
    if baseline is None:
        raise SweeplabError("--view compare needs --baseline STRATEGY, e.g. random")
    for _, sub in runs.groupby(groups, dropna=False):
        if baseline_series(sub, baseline) is not None:
            return
    labels = sorted({s for s in runs["series"] if not is_dense(pd.Series([s])).iloc[0]})
    raise SweeplabError(
        f"--baseline {baseline!r} names no single strategy of the selected runs; choose a "
        f"strategy or one of: {', '.join(labels)}"
    )


def _group(runs: pd.DataFrame, baseline: str) -> tuple[str, list[str], pd.DataFrame] | None:
    """(baseline series, point keys, compare frame) of one group; None without the baseline."""
    base = baseline_series(runs, baseline)
    if base is None:
        return None
    keys = [k for k in KEYS if k in runs and runs[k].notna().any()]
    return base, keys, compare(runs, base, keys).sort_values(["series", *keys])


def compare_table(runs: pd.DataFrame, baseline: str) -> Table | None:
    """The compare table of one group's ok runs (None when the baseline has none here).

    Args:
        runs: ok rows of one (data, model, --by) group, with `series` and `strategy` columns.
        baseline: a series label or a strategy (see baseline_series).
    """
    found = _group(runs, baseline)
    if found is None:
        return None
    base, keys, table = found
    rows = [
        [
            str(r["series"]),
            *("" if missing(r[k]) else value_label(r[k]) for k in keys),
            str(int(r["n"])),
            _points(r["diff"]),
            MISSING if missing(r["low"]) else f"[{_points(r['low'])}, {_points(r['high'])}]",
            _p(r["p"]),
            _p(r["p_holm"]),
            "*" if r["significant"] else "",
        ]
        for _, r in table.iterrows()
    ]
    level = f"{100 * LEVEL:.0f}%"
    return Table(
        caption=(
            f"Paired difference in test accuracy after recovery vs {base}, in points: "
            f"mean over runs that share a dense model (same seed), {level} t interval, "
            f"paired t-test p, Holm-corrected across this table"
        ),
        headers=["strategy", *(k.replace("_requested", "") for k in keys), "n",
                 "Δ acc", f"{level} CI", "p", "p (Holm)", "sig"],  # fmt: skip
        rows=rows,
        align="l" + "r" * (len(keys) + 5) + "c",
        note=f"* = significant at {ALPHA} after Holm's correction; n = pairs; — = not defined "
        "(one pair, or no spread)",
        strategies=[str(s) for s in table["series"]],
    )


def compare_frame(summary: Summary, baseline: str | None) -> pd.DataFrame:
    """The compare view as one tidy frame (csv, json): every group's table, group columns first.

    Holm's correction runs within each group, as in the printed tables.
    """
    check_baseline(summary.runs, baseline, summary.groups)
    frames = []
    for key, runs in summary.runs.groupby(summary.groups, dropna=False, sort=True):
        found = _group(runs, str(baseline))
        if found is not None:
            frame = found[2]
            for i, (column, value) in enumerate(zip(summary.groups, key, strict=True)):
                frame.insert(i, column, value)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)
