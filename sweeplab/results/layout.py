"""Formatted tables as data: caption, headers and text cells, grouped in blocks.

What the views build (tables.py, compare_view.py) and what render.py and the report write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Table:
    """One formatted table: caption, headers, text cells, alignment (l/r per column), a note."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    align: str
    note: str = ""
    strategies: list[str] | None = None  # each line's strategy (the report filters on it)


@dataclass
class Block:
    """The tables of one group (data, model and --by values)."""

    title: str
    values: dict[str, Any]
    tables: list[Table]
