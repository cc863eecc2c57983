"""Selecting rows: `--where` clauses (table, report), and `matches`, which a paper block's
`where:` uses too, so both compare values the same way.

A clause is `key=value` (a comma list matches any: strategy=a,b); a mapping {key: value} is the
same clauses. Numeric columns compare as numbers, so seed=1 matches 1 and 1.0 alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sweeplab.errors import SweeplabError


def _values(column: pd.Series, limit: int = 10) -> str:
    values = sorted({str(v) for v in column.dropna().unique()})
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more if values else "no values"


def columns_hint(df: pd.DataFrame) -> str:
    fields = sorted(c for c in df.columns if "." not in c)
    return f"choose from {', '.join(fields)}, or a config key such as train.lr"


def matches(column: pd.Series, wanted: list[str]) -> pd.Series:
    """Boolean mask of the column's entries equal to any wanted value (as text or number)."""
    if pd.api.types.is_numeric_dtype(column):
        try:
            # Numeric columns compare as numbers: seed=1 matches 1 and 1.0 alike.
            return column.isin([float(v) for v in wanted])
        except ValueError:
            pass
    return column.astype(str).isin(wanted)


def filter_rows(df: pd.DataFrame, where: Sequence[str]) -> pd.DataFrame:
    """Keep rows matching every `key=value` (value may be a comma list: strategy=a,b).

    Args:
        df: rows from load_rows (config keys are dotted columns: train.lr=0.1 works).
        where: clauses; all must hold.
    Returns:
        The matching rows; raises SweeplabError naming the clause that matches nothing.
    """
    for clause in where:
        key, sep, value = clause.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweeplabError(f"--where {clause!r} is not key=value; e.g. --where data=mnist")
        if key not in df.columns:
            raise SweeplabError(f"--where {key}: no such column; {columns_hint(df)}")
        kept = df[matches(df[key], value.split(","))]
        if kept.empty and not df.empty:
            raise SweeplabError(f"--where {clause} matches no run; {key} has: {_values(df[key])}")
        df = kept
    return df




def clauses(where: Mapping[str, Any]) -> list[str]:
    """A mapping {key: value or list of values} as `key=v1,v2` clauses for filter_rows."""
    out = []
    for key, value in where.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out.append(f"{key}={','.join(str(v) for v in values)}")
    return out
