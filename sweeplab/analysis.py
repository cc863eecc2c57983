"""Aggregates derived from long-format rows: a row index, seed statistics, Pareto fronts, tables.

pandas only: `sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab import store
from sweeplab.errors import SweeplabError
from sweeplab.row import SCHEMA_VERSION

GROUP = ["data", "model"]
DEFAULT_DELTA = 1.0  # accuracy points (of 100) a run may lose against its own dense model
# Costs a Pareto front can be taken against: name -> (pruned column, dense column).
COSTS = {
    "params": ("params_nonzero", "params_total"),
    "flops": ("flops", "flops_dense"),
    "latency": ("latency_b1_ms", "latency_b1_dense_ms"),
    "size": ("size_bytes", "size_dense_bytes"),
}
FRONT = {"params": "pareto", "flops": "pareto_flops", "latency": "pareto_latency",
         "size": "pareto_size"}  # fmt: skip
# Column order of the points table (and so of CSV/JSON output) after the group columns; the
# Pareto flags of the measured costs go before "best".
POINT_COLUMNS = ["series", "strategy", "scope", "schedule", "recovery", "sparsity_requested",
                 "round", "sparsity", "compression", "nonzero", "flops", "speedup", "latency",
                 "speedup_measured", "size", "acc_pruned", "acc_pruned_std", "acc", "acc_std",
                 "n", "acc_dense", "drop", "drop_std", "best", "run_ids"]  # fmt: skip


# Row columns a series label may carry when they vary within one strategy.
_LABEL_COLUMNS = ("scope", "schedule", "recovery", "granularity")
# Config keys that never split a series: the point's own coordinates, or not part of identity.
_NOT_SERIES = ("pruning.name", "pruning.sparsity", "data.name", "model.name")
_NUMERIC = ("round", "sparsity_requested", "sparsity_achieved", "params_total", "params_nonzero",
            "compression", "acc_dense_test", "acc_pruned_test", "acc_finetuned_test",
            "speedup_measured", *(c for pair in COSTS.values() for c in pair))  # fmt: skip
_DENSE_SECTIONS = tuple(f"{k}." for k in store.DENSE_KEYS)

INDEX_FILE = "runs.index.json"
INDEX_VERSION = 1
# Large row fields the index leaves out: no table needs them; the report reads the row files.
_UNINDEXED = ("config", "versions", "layer_sparsity", "seconds")
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
    """One row as the index keeps it: scalar fields plus the config's dotted keys."""
    flat = {k: v for k, v in row.items() if k not in _UNINDEXED}
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


def _parse(path: Path) -> dict[str, Any]:
    try:
        return flat_row(store.read_row(path))
    except ValueError as e:
        raise SweeplabError(
            f"{path} is not a valid row ({e}); delete it and re-run that run"
        ) from e


def load_rows(results_dir: str | Path) -> pd.DataFrame:
    """The rows of a results dir, one per run, through an index file rebuilt as rows change.

    Parsing thousands of small JSON files dominates `sweeplab table`. The index
    (results_dir/runs.index.json, column-oriented) keeps every row's flat form with its file's
    modification time and size; only new or rewritten row files are parsed again, and rows
    whose file is gone drop out. A results dir that cannot be written is parsed in full.

    Args:
        results_dir: the folder holding runs/.
    Returns:
        DataFrame: row fields (without config, versions, layer_sparsity, seconds) and the
        config flattened to dotted columns (train.lr, ...).
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
    flats = [
        dict(zip(columns, cached[n][1], strict=False))
        if n in cached and cached[n][0] == stamps[n]
        else _parse(directory / n)
        for n in names
    ]
    columns = list(dict.fromkeys(key for flat in flats for key in flat))
    rows = [[flat.get(c) for c in columns] for flat in flats]
    blob = {"version": INDEX_VERSION, "schema": SCHEMA_VERSION, "columns": columns,
            "names": names, "stamps": [stamps[n] for n in names], "rows": rows}  # fmt: skip
    # A read-only results dir still reads, just without the speed-up.
    with contextlib.suppress(OSError):
        store.atomic_write_text(index_path, json.dumps(blob, separators=(",", ":"), default=str))
    return pd.DataFrame(rows, columns=columns)


def pareto_front(cost: Sequence[float], gain: Sequence[float]) -> np.ndarray:
    """Boolean mask of points no other point dominates (cost <= and gain >=, one strictly).

    Args:
        cost: lower is better (e.g. nonzero parameters).
        gain: higher is better (e.g. accuracy).
    Returns:
        bool array, True on the front.
    """
    c, g = np.asarray(cost, dtype=float), np.asarray(gain, dtype=float)
    le = c[None, :] <= c[:, None]  # le[i, j]: j costs no more than i
    ge = g[None, :] >= g[:, None]
    strict = (c[None, :] < c[:, None]) | (g[None, :] > g[:, None])
    return ~(le & ge & strict).any(axis=1)


def _values(column: pd.Series, limit: int = 10) -> str:
    values = sorted({str(v) for v in column.dropna().unique()})
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more if values else "no values"


def _columns_hint(df: pd.DataFrame) -> str:
    fields = sorted(c for c in df.columns if "." not in c)
    return f"choose from {', '.join(fields)}, or a config key such as train.lr"


def _matches(column: pd.Series, wanted: list[str]) -> pd.Series:
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
            raise SweeplabError(f"--where {key}: no such column; {_columns_hint(df)}")
        kept = df[_matches(df[key], value.split(","))]
        if kept.empty and not df.empty:
            raise SweeplabError(f"--where {clause} matches no run; {key} has: {_values(df[key])}")
        df = kept
    return df


@dataclass
class Summary:
    """Every aggregate of a set of rows; tables and the report are views of it."""

    points: pd.DataFrame  # one line per (group, series, sparsity, round), dense points included
    series_dense: pd.DataFrame  # each series' own dense baseline: group, series, acc, acc_std, n
    groups: list[str]  # data, model and the --by columns
    costs: list[str]  # cost names (keys of COSTS) that the rows measured
    delta: float  # accuracy points for "best compression within delta"
    failed: int = 0  # failed rows left out


def _series_keys(ok: pd.DataFrame, groups: list[str], within: list[str], dense: bool) -> list[str]:
    """Columns that vary inside one (group, strategy): they split it into several series."""
    candidates = [
        c
        for c in ok.columns
        if c not in groups
        and c not in _NOT_SERIES
        and (c in _LABEL_COLUMNS if "." not in c else not c.startswith("trainer."))
        and c.rsplit(".", 1)[-1] not in store.IGNORED_KEYS
        and (not dense or c.startswith(_DENSE_SECTIONS))
    ]
    if not candidates:
        return []
    counts = ok.groupby(within, dropna=False)[candidates].nunique(dropna=True)
    return [c for c in candidates if (counts[c] > 1).any()]


def _labels(ok: pd.DataFrame, head: Iterable[str], keys: list[str]) -> list[str]:
    if not keys:
        return list(head)
    out = []
    for name, *values in zip(head, *(ok[k] for k in keys), strict=True):
        extra = ", ".join(f"{k}={_short(v)}" for k, v in zip(keys, values, strict=True) if _set(v))
        out.append(f"{name} [{extra}]" if extra else name)
    return out


def _set(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def natural_rank(labels: Iterable[str]) -> dict[str, int]:
    """Rank of each label in natural order: numbers inside compare as numbers."""

    def key(label: str) -> list[tuple[int, Any]]:
        parts = re.split(r"(\d+(?:\.\d+)?)", str(label))
        return [(1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts)]

    return {label: i for i, label in enumerate(sorted(set(labels), key=key))}


def _lists(codes: np.ndarray, values: pd.Series, n: int) -> list[list[Any]]:
    # A Python list per group, as groupby(...).agg(list) gives, without its per-group overhead.
    out: list[list[Any]] = [[] for _ in range(n)]
    for code, value in zip(codes, values, strict=True):
        out[code].append(value)
    return out


def _mark_fronts(points: pd.DataFrame, groups: list[str], costs: list[str]) -> None:
    codes = points.groupby(groups, dropna=False, sort=False).ngroup().to_numpy()
    acc = points["acc"].to_numpy(dtype=float)
    for name in costs:
        cost = points["nonzero" if name == "params" else name].to_numpy(dtype=float)
        valid = ~np.isnan(cost) & ~np.isnan(acc)
        flags = np.zeros(len(points), dtype=bool)
        for code in np.unique(codes):
            idx = np.flatnonzero((codes == code) & valid)
            if len(idx):
                flags[idx] = pareto_front(cost[idx], acc[idx])
        points[FRONT[name]] = flags


def _mark_best(points: pd.DataFrame, groups: list[str], delta: float) -> None:
    points["best"] = False
    pruned = points[(points["strategy"] != "dense") & (points["drop"] <= delta / 100 + 1e-12)]
    if len(pruned):
        ranked = pruned.sort_values(["compression", "acc"], ascending=False)
        points.loc[ranked.drop_duplicates(groups + ["series"]).index, "best"] = True


def summarize(df: pd.DataFrame, by: Sequence[str] = (), delta: float = DEFAULT_DELTA) -> Summary:
    """Seed statistics per point, the dense baselines, Pareto fronts and the best point within Δ.

    A point is one (group, series, requested sparsity, round); a series is a strategy, split
    by any config key that varies within it (e.g. `global_magnitude [finetune.epochs=5]`),
    so seeds are only pooled across runs that differ in nothing else. Dense models appear as
    strategy "dense" at compression 1, averaged over the distinct dense models.

    Args:
        df: rows (load_rows or store.collect), possibly filtered.
        by: extra grouping columns (each value gets its own tables).
        delta: accuracy points a run may lose against its own dense model to count as "best".
    Returns:
        Summary; its points are empty when no row is ok.
    """
    groups = [*GROUP, *(b for b in by if b not in GROUP)]
    for key in groups:
        if key not in df.columns:
            raise SweeplabError(f"--by {key}: no such column; {_columns_hint(df)}")
    if not delta >= 0:
        raise SweeplabError(f"--delta {delta} must be >= 0 (accuracy points), e.g. --delta 1")
    ok = df[df["status"] == "ok"].copy()
    failed = int((df["status"] == "failed").sum())
    costs = ["params"] + [
        name for name, (col, _) in list(COSTS.items())[1:]
        if col in ok.columns and ok[col].notna().any()
    ]  # fmt: skip
    if ok.empty:
        return Summary(pd.DataFrame(), pd.DataFrame(), groups, costs, delta, failed)
    for column in _LABEL_COLUMNS:
        if column not in ok.columns:
            ok[column] = np.nan
    for column in _NUMERIC:
        # Columns that are null in every row load as objects; aggregates need numbers.
        ok[column] = pd.to_numeric(ok[column], errors="coerce") if column in ok else np.nan
    ok["_drop"] = ok["acc_dense_test"] - ok["acc_finetuned_test"]
    ok["_speedup"] = ok["flops_dense"] / ok["flops"]
    varying = _series_keys(ok, groups, [*groups, "strategy"], dense=False)
    ok["series"] = _labels(ok, ok["strategy"].astype(str), varying)
    dense_keys = _series_keys(ok, groups, groups, dense=True)
    ok["_dense"] = _labels(ok, ["dense"] * len(ok), dense_keys)

    agg: dict[str, tuple[str, Any]] = dict(
        strategy=("strategy", "first"), scope=("scope", "first"),
        schedule=("schedule", "first"), recovery=("recovery", "first"),
        sparsity=("sparsity_achieved", "mean"), compression=("compression", "mean"),
        nonzero=("params_nonzero", "mean"), flops=("flops", "mean"),
        latency=("latency_b1_ms", "mean"), size=("size_bytes", "mean"),
        speedup=("_speedup", "mean"), speedup_measured=("speedup_measured", "mean"),
        acc_pruned=("acc_pruned_test", "mean"), acc_pruned_std=("acc_pruned_test", "std"),
        acc=("acc_finetuned_test", "mean"), acc_std=("acc_finetuned_test", "std"),
        n=("acc_finetuned_test", "count"), acc_dense=("acc_dense_test", "mean"),
        drop=("_drop", "mean"), drop_std=("_drop", "std"),
    )  # fmt: skip
    keys = [*groups, "series", "sparsity_requested", "round"]
    grouped = ok.groupby(keys, dropna=False, sort=False)
    points = grouped.agg(**agg).reset_index()
    points["run_ids"] = _lists(grouped.ngroup().to_numpy(), ok["run_id"], len(points))

    models = ok.drop_duplicates([*groups, "dense_id"])
    dense = (
        models.groupby([*groups, "_dense"], dropna=False, sort=False)
        .agg(
            nonzero=("params_total", "mean"),
            flops=("flops_dense", "mean"),
            latency=("latency_b1_dense_ms", "mean"),
            size=("size_dense_bytes", "mean"),
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "count"),
            run_ids=("dense_id", list),
        )  # fmt: skip
        .reset_index()
        .rename(columns={"_dense": "series"})
    )
    dense = dense[dense["n"] > 0].assign(
        strategy="dense", scope="-", sparsity_requested=0.0, sparsity=0.0, compression=1.0,
        speedup=1.0, acc_pruned=dense["acc"], acc_pruned_std=dense["acc_std"],
        acc_dense=dense["acc"], drop=0.0, drop_std=0.0,
    )  # fmt: skip
    series_dense = (
        ok.drop_duplicates([*groups, "series", "dense_id"])
        .groupby([*groups, "series"], dropna=False, sort=False)
        .agg(
            acc=("acc_dense_test", "mean"),
            acc_std=("acc_dense_test", "std"),
            n=("acc_dense_test", "count"),
        )  # fmt: skip
        .reset_index()
    )
    series_dense["acc_std"] = series_dense["acc_std"].fillna(0.0)

    points = pd.concat([dense, points], ignore_index=True)
    for column in ("acc_std", "acc_pruned_std", "drop_std"):
        points[column] = points[column].astype(float).fillna(0.0)
    points["n"] = points["n"].astype(int)
    _mark_fronts(points, groups, costs)
    _mark_best(points, groups, delta)
    rank = natural_rank(points["series"])
    points = (
        # Dense first within each group, then series in natural order (epochs=2 before 10).
        points.assign(_o=points["strategy"].ne("dense"), _s=points["series"].map(rank))
        .sort_values([*groups, "_o", "_s", "sparsity_requested", "round"])
        .drop(columns=["_o", "_s"])
        .reset_index(drop=True)
    )
    unused = {c for c in ("round", "speedup_measured") if points[c].isna().all()}
    unused |= {c for c in ("flops", "latency", "size") if c not in costs}
    unused |= {"speedup"} if "flops" not in costs else set()
    columns = [*groups, *(c for c in POINT_COLUMNS if c not in unused)]
    at = columns.index("best")
    columns[at:at] = [FRONT[c] for c in costs]
    return Summary(points[columns], series_dense, groups, costs, delta, failed)


def best_within(summary: Summary) -> pd.DataFrame:
    """Per (group, series): the most compressed point within Δ of its own dense accuracy.

    A series with no such point gets a line with best=False: its smallest accuracy drop.
    """
    pts = summary.points
    if pts.empty:
        return pts
    pruned = pts[pts["strategy"] != "dense"]
    best = pruned[pruned["best"]]
    missing = pruned[~pruned.set_index([*summary.groups, "series"]).index.isin(
        best.set_index([*summary.groups, "series"]).index
    )]  # fmt: skip
    closest = missing.sort_values("drop").drop_duplicates([*summary.groups, "series"])
    out = pd.concat([best, closest])
    out["_s"] = out["series"].map(natural_rank(out["series"]))
    return out.sort_values([*summary.groups, "_s"]).drop(columns="_s").reset_index(drop=True)


def pivot_cells(summary: Summary, columns: str = "sparsity") -> pd.DataFrame:
    """The strategy x sparsity (or x compression) pivot in long form, dense column first.

    Args:
        summary: from summarize.
        columns: "sparsity" (requested) or "compression" (achieved, 2 significant digits).
    Returns:
        group columns, series, column (label), order, acc, acc_std, n, acc_pruned.
    """
    if columns not in ("sparsity", "compression"):
        raise SweeplabError(f"--pivot {columns!r} is not one of sparsity, compression")
    pts = summary.points
    if pts.empty:
        return pts
    pruned = pts[pts["strategy"] != "dense"].copy()
    if columns == "sparsity":
        pruned["order"] = pruned["sparsity_requested"].astype(float)
        pruned["column"] = [f"{s:g}" for s in pruned["order"]]
    else:
        pruned["order"] = [float(f"{c:.2g}") for c in pruned["compression"]]
        pruned["column"] = [f"{c:g}x" for c in pruned["order"]]
    if "round" in pruned.columns:
        # Iterative schedules: the last round of each series at a column stands for it.
        pruned = pruned.sort_values("round").drop_duplicates(
            [*summary.groups, "series", "column"], keep="last"
        )
    dense = summary.series_dense.assign(
        column="dense", order=-1.0, acc_pruned=summary.series_dense["acc"]
    )
    keep = [*summary.groups, "series", "column", "order", "acc", "acc_std", "n", "acc_pruned"]
    cells = pd.concat([dense[keep], pruned[keep]], ignore_index=True)
    cells["_s"] = cells["series"].map(natural_rank(cells["series"]))
    cells = cells.sort_values([*summary.groups, "_s", "order"]).drop(columns="_s")
    return cells.reset_index(drop=True)


# ---- formatting: every table is built once as text cells, then written as md, LaTeX or HTML ----

VIEWS = ("all", "pivot", "points", "best")
_COST_LABELS = {"params": "params", "flops": "FLOPs", "latency": "latency", "size": "size"}


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


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _pct(value: Any) -> str:
    return "—" if _nan(value) else f"{100 * value:.2f}"


def _pm(mean: Any, std: Any, n: int) -> str:
    return _pct(mean) if n <= 1 or _nan(mean) else f"{_pct(mean)} ± {100 * std:.2f}"


def _si(value: Any) -> str:
    if _nan(value):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _bytes(value: Any) -> str:
    if _nan(value):
        return "—"
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def _num(value: Any, fmt: str) -> str:
    return "—" if _nan(value) else format(value, fmt)


def _pivot_table(summary: Summary, sub: pd.DataFrame, cells: pd.DataFrame, by: str) -> Table:
    labels = list(dict.fromkeys(cells.sort_values("order")["column"]))
    n_values = set(cells["n"])
    strategy_of = dict(zip(sub["series"], sub["strategy"], strict=True))
    found: dict[str, dict[str, str]] = {}
    for c in cells.to_dict("records"):
        text = _pm(c["acc"], c["acc_std"], c["n"])
        if c["column"] != "dense":
            text += f" / {_pct(c['acc_pruned'])}"
        text += f" (n={c['n']})" if len(n_values) > 1 else ""
        found.setdefault(c["series"], {})[c["column"]] = text
    rows = [[str(s), *(line.get(label, "") for label in labels)] for s, line in found.items()]
    strategies = [str(strategy_of.get(s, s)) for s in found]
    axis = "requested sparsity" if by == "sparsity" else "compression"
    seeds = f"n = {n_values.pop()} per cell" if len(n_values) == 1 else "n per cell"
    return Table(
        caption=f"Test accuracy % by {axis}: after finetune (mean ± std over seeds) / before "
        "finetune; dense = each strategy's own dense models (compression 1)",
        headers=["strategy", *labels],
        rows=rows,
        align="l" + "r" * len(labels),
        note=seeds,
        strategies=strategies,
    )


def _points_table(summary: Summary, sub: pd.DataFrame) -> Table:
    has = set(sub.columns)

    def fmt(column: str, f: Any) -> list[str]:
        # Column-wise: thousands of points format in a few ms.
        return [f(v) for v in sub[column].tolist()]

    columns: list[tuple[str, list[str]]] = [
        ("strategy", [str(v) for v in sub["series"].tolist()]),
        ("sparsity", fmt("sparsity_requested", lambda v: f"{v:g}")),
    ]
    if "round" in has:
        columns.append(("round", fmt("round", lambda v: "" if _nan(v) else f"{v:.0f}")))
    columns += [
        ("achieved", fmt("sparsity", lambda v: _num(v, ".4f"))),
        ("compression", fmt("compression", lambda v: _num(v, ".1f") + "x")),
        ("nonzero params", fmt("nonzero", lambda v: _num(v, ",.0f"))),
    ]
    if "flops" in has:
        columns.append(("FLOPs", fmt("flops", _si)))
        columns.append(("FLOP speedup", fmt("speedup", lambda v: _num(v, ".2f") + "x")))
    if "latency" in has:
        columns.append(("latency b1 ms", fmt("latency", lambda v: _num(v, ".3g"))))
    if "speedup_measured" in has:
        columns.append(
            ("measured speedup", fmt("speedup_measured", lambda v: _num(v, ".2f") + "x"))
        )
    if "size" in has:
        columns.append(("size", fmt("size", _bytes)))
    acc = [_pm(*v) for v in zip(sub["acc"].tolist(), sub["acc_std"].tolist(), sub["n"].tolist(),
                                strict=True)]  # fmt: skip
    columns += [
        ("acc pruned %", fmt("acc_pruned", _pct)),
        ("acc finetuned %", acc),
        ("n", fmt("n", str)),
    ]
    fronts = summary.costs
    for c in fronts:
        header = "pareto" if fronts == ["params"] else f"front {_COST_LABELS[c]}"
        columns.append((header, fmt(FRONT[c], lambda v: "*" if v else "")))
    costs = ", ".join(_COST_LABELS[c] for c in fronts)
    return Table(
        caption="Pareto table: test accuracy after finetune against cost, mean over seeds",
        headers=[h for h, _ in columns],
        rows=[list(r) for r in zip(*(cells for _, cells in columns), strict=True)],
        align="l" + "r" * (len(columns) - 1),
        note=f"* = on the Pareto front (no other point is as cheap and as accurate) of accuracy "
        f"vs {costs}; blank = dominated. nonzero params count all parameters, biases included",
        strategies=[str(s) for s in sub["strategy"]],
    )


def _best_table(summary: Summary, best: pd.DataFrame) -> Table:
    rows = []
    for r in best.to_dict("records"):
        found = bool(r["best"])
        sparsity = f"{r['sparsity_requested']:g}"
        rows.append([
            str(r["series"]), sparsity if found else f"({sparsity})",
            _num(r["compression"], ".1f") + "x" if found else "none",
            _pm(r["acc"], r["acc_std"], r["n"]), _pct(r["acc_dense"]),
            _num(-100 * r["drop"], "+.2f") if r["n"] <= 1 else
            f"{-100 * r['drop']:+.2f} ± {100 * r['drop_std']:.2f}", str(r["n"]),
        ])  # fmt: skip
    return Table(
        caption=f"Best compression within {summary.delta:g} accuracy point(s) of each run's "
        "own dense model (mean over seeds)",
        headers=[
            "strategy",
            "sparsity",
            "compression",
            "acc %",
            "dense acc %",
            "Δ acc vs dense",
            "n",
        ],
        rows=rows,
        align="l" + "r" * 6,
        note="(…) = no point is within Δ: the one with the smallest loss is shown",
        strategies=[str(s) for s in best["strategy"]],
    )


def blocks(summary: Summary, view: str = "all", pivot: str = "sparsity") -> list[Block]:
    """The tables of a summary, one Block per group.

    Args:
        summary: from summarize.
        view: all, pivot, points or best.
        pivot: pivot columns, "sparsity" or "compression".
    Returns:
        list of Block, in group order.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    pts, groups = summary.points, summary.groups
    cells = pivot_cells(summary, pivot) if view in ("all", "pivot") else None
    best = best_within(summary) if view in ("all", "best") else None
    out = []
    for key, sub in pts.groupby(groups, dropna=False, sort=True):
        values = dict(zip(groups, key, strict=True))
        title = " / ".join(
            [str(values["data"]), str(values["model"])]
            + [f"{k}={_short(values[k])}" for k in groups[2:]]
        )
        tables = []

        def mine(frame: pd.DataFrame, values: dict[str, Any] = values) -> pd.DataFrame:
            mask = np.ones(len(frame), dtype=bool)
            for k, v in values.items():
                mask &= frame[k].isna().to_numpy() if _nan(v) else (frame[k] == v).to_numpy()
            return frame[mask]

        if cells is not None:
            tables.append(_pivot_table(summary, sub, mine(cells), pivot))
        if view in ("all", "points"):
            tables.append(_points_table(summary, sub))
        if best is not None and len(mine(best)):
            tables.append(_best_table(summary, mine(best)))
        out.append(Block(title, values, tables))
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(found: list[Block]) -> str:
    """Markdown: a `### data / model` heading per group, then its tables, columns aligned."""
    lines: list[str] = []
    for block in found:
        lines += [f"### {_md_escape(block.title)}", ""]
        for t in block.tables:
            rows = [[_md_escape(c) for c in row] for row in [t.headers, *t.rows]]
            widths = [max(len(r[i]) for r in rows) for i in range(len(t.headers))]

            def line(cells: list[str], widths: list[int] = widths, t: Table = t) -> str:
                padded = (
                    c.rjust(w) if a == "r" else c.ljust(w)
                    for c, w, a in zip(cells, widths, t.align, strict=True)
                )
                return "| " + " | ".join(padded) + " |"

            rule = ["-" * (w + 1) + (":" if a == "r" else "-")
                    for w, a in zip(widths, t.align, strict=True)]  # fmt: skip
            lines += [t.caption, "", line(rows[0]), "|" + "|".join(rule) + "|"]
            lines += [line(r) for r in rows[1:]]
            lines += ["", t.note, ""] if t.note else [""]
    return "\n".join(lines)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (special characters escaped, ± and Δ as math)."""
    out = "".join(_LATEX.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("—", "--")


def to_latex(found: list[Block]) -> str:
    """LaTeX tables with booktabs rules (\\usepackage{booktabs}), one table per group table."""
    parts = []
    for block in found:
        for t in block.tables:
            caption = latex_escape(f"{block.title}: {t.caption}. {t.note}".strip())
            body = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in t.rows]
            parts.append(
                "\n".join(
                    [
                        r"\begin{table}[t]",
                        r"\centering",
                        rf"\caption{{{caption}}}",
                        rf"\begin{{tabular}}{{{t.align}}}",
                        r"\toprule",
                        " & ".join(latex_escape(h) for h in t.headers) + r" \\",
                        r"\midrule",
                        *body,
                        r"\bottomrule",
                        r"\end{tabular}",
                        r"\end{table}",
                    ]
                )  # fmt: skip
            )
    return "% requires \\usepackage{booktabs}\n" + "\n\n".join(parts) + "\n"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # NaN is not JSON: missing values become null.
    return [
        {k: (None if _nan(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]


def _wide_pivot(summary: Summary, pivot: str) -> pd.DataFrame:
    cells = pivot_cells(summary, pivot)
    if cells.empty:
        return cells
    wide = cells.pivot_table(
        index=[*summary.groups, "series"], columns="column", dropna=False, sort=False,
        values=["acc", "acc_std", "n", "acc_pruned"], aggfunc="first",
    )  # fmt: skip
    labels = list(dict.fromkeys(cells.sort_values("order")["column"]))
    wide.columns = [f"{label} {stat}" for stat, label in wide.columns]
    ordered = [f"{label} {s}" for label in labels for s in ("acc", "acc_std", "acc_pruned", "n")]
    return wide[[c for c in ordered if c in wide.columns]].reset_index()


def render(summary: Summary, fmt: str, view: str = "all", pivot: str = "sparsity") -> str:
    """The summary as md, latex, csv or json text.

    Args:
        summary: from summarize.
        fmt: md | latex | csv | json.
        view: all | pivot | points | best. CSV holds one table: `all` writes the points table
            (tidy: one line per strategy and sparsity, front and best flags as columns).
        pivot: pivot columns, sparsity or compression.
    Returns:
        The text, newline-terminated.
    """
    if view not in VIEWS:
        raise SweeplabError(f"--view {view!r} is not one of {', '.join(VIEWS)}")
    if fmt == "md":
        return to_markdown(blocks(summary, view, pivot))
    if fmt == "latex":
        return to_latex(blocks(summary, view, pivot))
    joined = summary.points.assign(run_ids=[" ".join(r) for r in summary.points["run_ids"]])
    frames = {
        "points": lambda: joined if fmt == "csv" else summary.points,
        "pivot": lambda: _wide_pivot(summary, pivot),
        "best": lambda: best_within(summary).drop(columns="run_ids"),
    }
    if fmt == "csv":
        return frames["points" if view == "all" else view]().to_csv(index=False)
    if fmt == "json":
        if view != "all":
            return json.dumps(_records(frames[view]()), indent=1, default=str) + "\n"
        out = {"delta": summary.delta, "costs": summary.costs, "groups": summary.groups}
        out.update({k: _records(f()) for k, f in frames.items()})
        return json.dumps(out, indent=1, default=str) + "\n"
    raise SweeplabError(f"--format {fmt!r} is not one of md, latex, csv, json")
