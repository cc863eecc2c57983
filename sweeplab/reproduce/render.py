"""The reproduction table: every cell evaluated from the rows, and the markdown text of it.

`sweeplab reproduce` prints this text and writes it to tables/NAME.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.reproduce.rules import check_rule, evaluate, expression_names, fmt
from sweeplab.reproduce.schema import Cell, Paper
from sweeplab.reproduce.values import compute_value


@dataclass(frozen=True)
class CellResult:
    """One evaluated cell: our number as text and PASS/FAIL (an error fails the cell)."""

    cell: Cell
    ours: str
    passed: bool


def evaluate_cells(paper: Paper, rows: pd.DataFrame, source: str = "the rows") -> list[CellResult]:
    """Compute every value over rows, then every cell; a value's error fails the cells using it.

    Args:
        paper: the checked block.
        rows: rows from load_rows.
        source: how errors name the rows, e.g. "experiment=han2015_lenet300's rows".
    Returns:
        One CellResult per cell, in the block's order.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in paper.values.items():
        try:
            values[name] = compute_value(rows, spec, source)
        except SweeplabError as e:
            errors[name] = str(e)
    results = []
    for i, cell in enumerate(paper.cells):
        at = f"paper.cells[{i}]"
        used = expression_names(cell.ours, f"{at}.ours") | expression_names(cell.rule, f"{at}.pass")
        broken = [errors[n] for n in sorted(used) if n in errors]
        try:
            if broken:
                raise SweeplabError(broken[0])
            ours = fmt(evaluate(cell.ours, values, f"{at}.ours"))
            passed = check_rule(evaluate(cell.rule, values, f"{at}.pass"), cell.rule)
        except SweeplabError as e:
            ours, passed = f"error: {e}", False
        results.append(CellResult(cell, ours, passed))
    return results


def compute_minutes(seconds: Iterable[Mapping[str, float]]) -> float:
    """Minutes the rows' runs computed (sum of every row's phase seconds): a cold run's cost.

    Phases nest (a gradual schedule's pruning also counts in its training), so this is an
    upper bound; a row's dense phase is the training itself, or the cache load that replaced it.

    Args:
        seconds: each row's `seconds` field (phase -> wall seconds).
    """
    return sum(sum((s or {}).values()) for s in seconds) / 60


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(
    name: str,
    paper: Paper,
    results: list[CellResult],
    command: str,
    rows_note: str,
    minutes: float | None = None,
    threads: str | None = None,
) -> str:
    """The markdown table `sweeplab reproduce` prints and writes to tables/NAME.md.

    Args:
        minutes: compute minutes of the rows' runs (compute_minutes), shown next to the
            block's expected time.
        threads: the rows' torch thread counts (thread_counts), when recorded.
    """
    unit = "on one GPU" if paper.tier == "gpu" else "on a 2-core CPU"
    measured = [] if minutes is None else [f"- compute: {minutes:.1f} min (the runs' phases)"]
    measured += [] if threads is None else [f"- torch threads: {threads}"]
    lines = [
        f"## {name}",
        "",
        f"- citation: {paper.citation}",
        f"- table: {paper.table}",
        f"- setting: {paper.setting}",
        f"- tier: {paper.tier} (about {fmt(paper.minutes)} min cold {unit})",
        f"- command: `{command}`",
        f"- rows: {rows_note}",
        *measured,
        "- deviations from the paper:" + ("" if paper.deviations else " none"),
        *(f"  - {d}" for d in paper.deviations),
        "",
        "| cell | paper | ours | pass rule | tolerance | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c = r.cell
        paper_value = "-" if c.paper is None else str(c.paper)
        cols = [c.label, paper_value, r.ours, f"`{c.rule}`", c.tolerance]
        lines.append(
            "| " + " | ".join(_md(x) for x in cols) + f" | {'PASS' if r.passed else 'FAIL'} |"
        )
    passed = sum(r.passed for r in results)
    lines += ["", f"{passed}/{len(results)} cells pass", ""]
    return "\n".join(lines)
