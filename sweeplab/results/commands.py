"""`sweeplab table` and `sweeplab report`: select rows, aggregate them, write the views.

Reads rows with pandas only: neither torch nor Lightning is imported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeplab.errors import SweeplabError, check_new_path

if TYPE_CHECKING:
    import pandas as pd

    from sweeplab.results.analysis import Summary


def delta_points(text: str) -> float:
    """`--delta`'s argparse type: accuracy points, a number >= 0."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number, e.g. --delta 1") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0 accuracy points, e.g. --delta 1")
    return value


@dataclass
class Selection:
    """Which rows a command reads and how it aggregates them.

    Attributes:
        results_dir: the folder holding runs/.
        where: `key=value` clauses (sweeplab.results.filters).
        by: extra grouping columns besides data and model.
        delta: accuracy points a run may lose for "best compression within delta".
        pivot: pivot columns, "sparsity" or "compression".
    """

    results_dir: str = "results"
    where: list[str] = field(default_factory=list)
    by: list[str] = field(default_factory=list)
    delta: float = 1.0
    pivot: str = "sparsity"

    @classmethod
    def of(cls, args: Any) -> Selection:
        """The selection an argparse namespace holds (same attribute names)."""
        return cls(args.results_dir, list(args.where), list(args.by), args.delta, args.pivot)


def _rows(sel: Selection) -> pd.DataFrame:
    """The rows of sel.results_dir, filtered by --where; raises when none are left."""
    from sweeplab.results.filters import filter_rows
    from sweeplab.results.rows import load_rows

    df = load_rows(sel.results_dir)
    if df.empty:
        raise SweeplabError(f"{sel.results_dir}/runs has no rows yet; run a sweep first")
    return filter_rows(df, sel.where)


def _summary(sel: Selection, rows: pd.DataFrame) -> Summary:
    """Aggregates of the selected rows of runs (sensitivity rows left out); raises when none
    of them finished."""
    from sweeplab.results.analysis import summarize
    from sweeplab.results.sensitivity import is_sensitivity

    summary = summarize(rows, by=sel.by, delta=sel.delta)
    if summary.points.empty:
        where = " ".join(sel.where) or "(no filter)"
        if is_sensitivity(rows).all():
            raise SweeplabError(
                f"the rows in {sel.results_dir} matching {where} are sensitivity rows only; "
                "show them with sweeplab table --view sensitivity (or sweeplab report)"
            )
        raise SweeplabError(
            f"no finished runs in {sel.results_dir} match {where}: "
            f"{summary.failed} matching run(s) failed; see their rows' error field"
        )
    return summary


def _report_failed(rows: pd.DataFrame, results_dir: str) -> None:
    failed = rows[rows["status"] == "failed"]
    if len(failed):
        ids = ", ".join(failed["run_id"].head(5)) + (", ..." if len(failed) > 5 else "")
        print(
            f"\n{len(failed)} failed run(s) not in the tables: {ids} "
            f"(the error is in {results_dir}/runs/<run_id>.json)",
            file=sys.stderr,
        )


def _report_threads(rows: pd.DataFrame) -> None:
    """Say when the finished rows trained at different torch thread counts: the same run id
    can differ across them (float summation order), so such a table mixes two measurements."""
    from sweeplab.results.format import thread_counts

    if "threads" not in rows:
        return
    known = rows.loc[rows["status"] == "ok", "threads"].dropna()
    if known.nunique() > 1:
        note = thread_counts(known)
        print(f"\nnote: torch threads of these rows: {note} (row field threads)", file=sys.stderr)


def table(sel: Selection, fmt: str = "md", view: str = "all", baseline: str | None = None) -> int:
    """Print the tables of the selected rows (markdown, csv, latex or json); returns 0.

    Args:
        sel: the rows and aggregation.
        fmt: md | csv | latex | json.
        view: all | pivot | points | best | compare, or sensitivity: the curves of the
            sensitivity rows (`sweeplab sensitivity`), which every other view leaves out.
        baseline: the strategy (series) the compare view compares with.
    """
    from sweeplab.results.render import render
    from sweeplab.results.sensitivity import ordinary

    rows = _rows(sel)
    if view == "sensitivity":
        sys.stdout.write(_curves(rows, fmt))
        return 0
    summary = _summary(sel, rows)
    sys.stdout.write(render(summary, fmt, view, sel.pivot, baseline))
    rows = ordinary(rows)
    _report_failed(rows, sel.results_dir)
    _report_threads(rows)
    return 0


def _curves(rows: pd.DataFrame, fmt: str) -> str:
    """`--view sensitivity`: the sensitivity rows' curves as text, a line per layer."""
    from sweeplab.results import sensitivity
    from sweeplab.results.render import to_latex, to_markdown

    if sensitivity.curve_frame(rows).empty:
        raise SweeplabError(
            "no finished sensitivity rows among the selected rows; measure them with "
            "sweeplab sensitivity and the overrides of your runs (e.g. model=lenet5 seed=0)"
        )
    if fmt in ("md", "latex"):
        return (to_markdown if fmt == "md" else to_latex)(sensitivity.blocks(rows))
    return sensitivity.text(rows, fmt)


def report(
    sel: Selection,
    output: str,
    *,
    layer_run: str | None = None,
    title: str | None = None,
    plots: bool = True,
    wandb_project: str | None = None,
    baseline: str | None = None,
) -> int:
    """Write the HTML dashboard (and plots) of the selected rows; returns 0.

    Args:
        sel: the rows and aggregation.
        output: the HTML file to write.
        layer_run: run id for the per-layer sparsity plot (default: one the report picks).
        title: page title (default: the results dir).
        plots: also write PNG/SVG files.
        wandb_project: also log the report to this W&B project (None: don't).
        baseline: also show the paired comparison against this strategy.
    """
    from sweeplab.results import sensitivity_report
    from sweeplab.results.report import write_report
    from sweeplab.results.sensitivity import ordinary

    check_new_path(output, "-o")  # before any row is read, not after the work
    rows = _rows(sel)
    runs = ordinary(rows)
    part = sensitivity_report.section(rows, output, plots)
    if part.html and not (runs["status"] == "ok").any():  # sensitivity rows alone
        page = sensitivity_report.write_page(part, output, title or f"sweeplab: {sel.results_dir}")
        print(f"report: {page.html} (sensitivity only; {len(page.plots)} plot files)")
        return 0
    summary = _summary(sel, rows)
    written = write_report(
        summary,
        runs,
        sel.results_dir,
        output,
        layer_run=layer_run,
        title=title,
        plots=plots,
        pivot=sel.pivot,
        baseline=baseline,
        extra=(part.html, part.files),
    )
    print(f"report: {written.html} ({len(written.plots)} plot files in {written.plot_dir})")
    if wandb_project is not None:
        from sweeplab.results.wandb import wandb_report

        wandb_report(summary, written, project=wandb_project)
    _report_failed(rows, sel.results_dir)
    return 0
