"""`sweeplab table --view compare --baseline STRATEGY`: paired differences against a baseline.

Runs pair when they share a point (requested sparsity, round) and a dense model (dense_id:
the same data, model, recipe and seed), so the dense models' own spread cancels out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results.format import MISSING, missing
from sweeplab.results.series import value_label
from sweeplab.results.stats import ALPHA, LEVEL, compare
from sweeplab.results.layout import Table

if TYPE_CHECKING:
    from sweeplab.results.analysis import Summary

KEYS = ["sparsity_requested", "round"]  # what a point is, within one table group


def _points(value: float | None) -> str:
    return MISSING if value is None or missing(value) else f"{100 * value:+.2f}"


def _p(value: float | None) -> str:
    return MISSING if value is None or missing(value) else f"{value:.3g}"


def compare_table(runs: pd.DataFrame, baseline: str, metric: str = "acc_finetuned_test") -> Table:
    """The compare table of one group's ok runs.

    Args:
        runs: ok rows of one (data, model, --by) group, with a `series` column.
        baseline: the series the others are compared with.
        metric: the compared accuracy column (fractions).
    Returns:
        A Table; raises SweeplabError when the baseline has no runs in the group.
    """
    series = sorted(set(runs["series"]))
    if baseline not in series:
        raise SweeplabError(
            f"--baseline {baseline!r} has no finished runs here; choose one of: "
            f"{', '.join(s for s in series if s != 'dense')}"
        )
    keys = [k for k in KEYS if k in runs and runs[k].notna().any()]
    table = compare(runs, baseline, keys, metric=metric)
    rows = [
        [
            str(r["series"]),
            *(value_label(r[k]) for k in keys),
            str(int(r["n"])),
            _points(r["diff"]),
            f"[{_points(r['low'])}, {_points(r['high'])}]" if not missing(r["low"]) else MISSING,
            _p(r["p"]),
            _p(r["p_holm"]),
            "*" if r["significant"] else "",
        ]
        for _, r in table.sort_values(["series", *keys]).iterrows()
    ]
    level = f"{100 * LEVEL:.0f}%"
    return Table(
        caption=(
            f"Paired difference in test accuracy after recovery vs {baseline}, in points: "
            f"mean over runs that share a dense model (same seed), {level} t interval, "
            f"paired t-test p, Holm-corrected across this table"
        ),
        headers=["strategy", *(k.replace("_requested", "") for k in keys), "n",
                 "Δ acc", f"{level} CI", "p", "p (Holm)", "sig"],  # fmt: skip
        rows=rows,
        align="l" + "r" * (len(keys) + 5) + "c",
        note=f"* = significant at {ALPHA} after Holm's correction; n = pairs; — = not defined "
        "(one pair, or no spread)",
        strategies=[str(s) for s in table.sort_values(["series", *keys])["series"]],
    )


def compare_frame(summary: Summary, baseline: str | None) -> pd.DataFrame:
    """The compare view as one tidy frame (csv, json): every group's table, group columns first.

    Holm's correction runs within each group, as in the printed tables.
    """
    if baseline is None:
        raise SweeplabError("--view compare needs --baseline STRATEGY, e.g. random")
    frames = []
    for key, runs in summary.runs.groupby(summary.groups, dropna=False, sort=True):
        if baseline not in set(runs["series"]):
            continue
        keys = [k for k in KEYS if k in runs and runs[k].notna().any()]
        frame = compare(runs, baseline, keys)
        for i, (column, value) in enumerate(zip(summary.groups, key, strict=True)):
            frame.insert(i, column, value)
        frames.append(frame)
    if not frames:
        raise SweeplabError(f"--baseline {baseline!r} has no finished runs in the selection")
    return pd.concat(frames, ignore_index=True)
