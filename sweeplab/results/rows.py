"""The one row reader: a results dir's rows as one DataFrame, one column per core field, metric
and config key, kept fast by a flat-row index (runs.index.json).

`sweeplab.load_rows` (results/api.py) adds the table filter for notebooks. pandas only: `sweeplab table` never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.errors import SweeplabError, warn
from sweeplab.results import store
from sweeplab.results.row import SCHEMA_VERSION

INDEX_FILE = "runs.index.json"
INDEX_VERSION = 2
# Core fields the index leaves out (the config becomes dotted columns instead). Metrics that
# are mappings (layer_sparsity) are left out too: no table needs them; the report reads the
# row files.
_UNINDEXED = ("config", "versions", "seconds")
# Config sections that are locations or loggers, not content: not flattened into columns.
_UNFLATTENED = ("paths", "logger", "hydra")


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as dotted scalar keys (lists as JSON text, so they compare and group).

    Args:
        config: the resolved config of a row.
        prefix: dotted path of config within the whole config.
    Returns:
        {"train.lr": 0.05, "model.hidden": "[128, 64]", ...}
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if not prefix and key in _UNFLATTENED or key == "_partial_":
            continue
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = value
    return flat


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row (flat, as store.read_row gives it) as the index keeps it: core fields and
    metrics except mappings, plus the config's dotted keys."""
    flat = {k: v for k, v in row.items() if k not in _UNINDEXED and not isinstance(v, dict)}
    # Top-level config scalars (seed) are row fields already; sections become dotted columns.
    flat.update({k: v for k, v in flatten_config(row.get("config") or {}).items() if "." in k})
    return flat


def _read_index(path: Path) -> tuple[list[str], dict[str, tuple[list[int], list[Any]]]]:
    """The index's columns and {file name: ([mtime_ns, size], values)}; empty when unusable."""
    try:
        index = json.loads(path.read_text())
        if index["version"] != INDEX_VERSION or index["schema"] != SCHEMA_VERSION:
            return [], {}
        entries = zip(index["names"], index["stamps"], index["rows"], strict=True)
        return index["columns"], {name: (stamp, row) for name, stamp, row in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return [], {}


def _parse(path: Path) -> dict[str, Any] | None:
    """The flat row of one file; None, with a warning naming the file, when it is no row."""
    try:
        return flat_row(store.read_row(path))
    except store.TornRowError as e:
        warn(
            f"{path} is not a valid row ({e.problem}); skipped: delete it and run the sweep "
            "again, which redoes that run"
        )
    except ValueError as e:
        warn(f"{path} is not a valid row ({e}); skipped: delete it and re-run that run")
    return None


def load_rows(results_dir: str | Path) -> pd.DataFrame:
    """The rows of a results dir, one per run, through an index file rebuilt as rows change.

    Parsing thousands of small JSON files dominates `sweeplab table`. The index
    (results_dir/runs.index.json, column-oriented) keeps every row's flat form with its file's
    modification time and size; only new or rewritten row files are parsed again, and rows
    whose file is gone drop out. A results dir that cannot be written is parsed in full.

    Args:
        results_dir: the folder holding runs/.
    Returns:
        DataFrame: core fields (without config, versions, seconds), every metric that is not a
        mapping (so without layer_sparsity), whatever the row's schema version, and the config
        flattened to dotted columns (train.lr, ...).
    """
    directory = store.runs_dir(results_dir)
    if not directory.is_dir():
        raise SweeplabError(
            f"{results_dir} has no runs/ folder; run a sweep first "
            "(sweeplab run -m ...) or pass the results dir it wrote to"
        )
    index_path = Path(results_dir) / INDEX_FILE
    columns, cached = _read_index(index_path)
    stamps: dict[str, list[int]] = {}
    with os.scandir(directory) as found:
        for entry in found:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                st = entry.stat()
                stamps[entry.name] = [st.st_mtime_ns, st.st_size]
    names = sorted(stamps)
    if stamps.keys() == cached.keys() and all(cached[n][0] == stamps[n] for n in names):
        return pd.DataFrame([cached[n][1] for n in names], columns=columns)
    parsed = {
        n: dict(zip(columns, cached[n][1], strict=False))
        if n in cached and cached[n][0] == stamps[n]
        else _parse(directory / n)
        for n in names
    }
    kept = {n: flat for n, flat in parsed.items() if flat is not None}  # files that are rows
    names, flats = list(kept), list(kept.values())
    columns = list(dict.fromkeys(key for flat in flats for key in flat))
    rows = [[flat.get(c) for c in columns] for flat in flats]
    blob = {"version": INDEX_VERSION, "schema": SCHEMA_VERSION, "columns": columns,
            "names": names, "stamps": [stamps[n] for n in names], "rows": rows}  # fmt: skip
    # A read-only results dir still reads, just without the speed-up.
    with contextlib.suppress(OSError):
        store.atomic_write_text(index_path, json.dumps(blob, separators=(",", ":"), default=str))
    return pd.DataFrame(rows, columns=columns)
