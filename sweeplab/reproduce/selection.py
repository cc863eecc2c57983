"""The rows of one `sweeplab reproduce` sweep: the runs its manifest lists, and their times."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from sweeplab.results import store
from sweeplab.results.sensitivity import ordinary


def base_run_id(run_id: str) -> str:
    """The run a row belongs to: an iterative run's round rows are `<run_id>-r<k>`."""
    return re.sub(r"-r\d+$", "", run_id)


@dataclass
class Selection:
    """The rows of one sweep: ok ones to evaluate, and one line per failed or missing run."""

    rows: pd.DataFrame
    failed: list[str]


def column(df: pd.DataFrame, key: str) -> pd.Series:
    """A column, or nulls where no row has it (a results dir of old or failed rows)."""
    return df[key] if key in df else pd.Series(None, index=df.index, dtype=object)


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return ordinary(df[column(df, "status") == "ok"])  # sensitivity rows: curves, not runs


def select_manifest_rows(df: pd.DataFrame, run_ids: Iterable[str]) -> Selection:
    """Rows of the runs a sweep listed in its manifest (round rows and dense rows included).

    Args:
        df: every row of the results dir (load_rows).
        run_ids: the manifest: one run id per job of the sweep.
    Returns:
        The ok rows, and `run_id: error` for each listed run that failed or wrote no row.
    """
    ids = set(run_ids)
    run_id = column(df, "run_id").map(str)
    mine = run_id.map(base_run_id).isin(ids)
    dense_ids = set(column(df, "dense_id")[mine].dropna())
    dense = (column(df, "strategy") == "dense") & column(df, "dense_id").isin(dense_ids) & ~mine
    rows = df[mine | dense]
    errors = column(rows, "error").map(lambda e: e if isinstance(e, str) and e else "failed")
    failed = [
        f"{rid}: {error}"
        for rid, error, status in zip(
            column(rows, "run_id"), errors, column(rows, "status"), strict=True
        )
        if status != "ok"
    ]
    have = set(run_id[mine])
    failed += [f"{rid}: no row written (see the sweep's output)" for rid in sorted(ids - have)]
    return Selection(ok_rows(rows), failed)


def phase_seconds(results_dir: str, rows: pd.DataFrame) -> list[dict[str, float]]:
    """Each row's `seconds` (phase -> wall seconds), read from its row file: load_rows leaves
    that field out of its index."""
    out = []
    for rid in column(rows, "run_id"):
        path = store.row_path(results_dir, str(rid))
        row = store.read_row(path) if path.is_file() else {}
        out.append(row.get("seconds") or {})
    return out
