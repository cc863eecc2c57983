"""The report page's data: a Summary as the JSON its script draws from (pure, JSON-ready).

The page aggregates runs itself, because its pickers and filters change what pools: a point is
the runs of one card, one line (a series label by default, or any varying key's value) and one
(requested sparsity, round), as summarize pools them. So every run goes in with its axes, its
metrics, the value of every key a reader may group or filter by, and the config keys that
differ between runs (`common` holds the rest once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sweeplab.results import identity
from sweeplab.results.analysis import Summary
from sweeplab.results.format import MISSING, missing
from sweeplab.results.palette import PALETTE, colors
from sweeplab.results.series import (
    LABEL_COLUMNS,
    is_dense,
    natural_rank,
    short_names,
    value_label,
)
from sweeplab.results.stats import LEVEL
from sweeplab.results.tables import blocks

# Keys whose values read alone in a line name ("iterative"); config keys read `key=value`.
BARE = ("series", "data", "model", "strategy", *LABEL_COLUMNS, "experiment")
# Row columns a reader may group or filter by, before the config keys.
_COLUMNS = ("data", "model", "strategy", *LABEL_COLUMNS, "experiment", "seed")
# Metrics each run carries: payload name -> row column (accuracies are fractions).
_METRICS = {
    "acc": "acc_finetuned_test", "accb": "acc_pruned_test", "dense": "acc_dense_test",
    "sreq": "sparsity_requested", "sach": "sparsity_achieved", "round": "round",
    "c": "compression", "fsp": "_speedup", "msp": "speedup_measured", "size": "size_bytes",
    "lat": "latency_b1_ms", "dsize": "size_dense_bytes", "dlat": "latency_b1_dense_ms",
}  # fmt: skip
_T_TABLE = 100  # t quantiles for 1..100 degrees of freedom; beyond, the normal quantile


def clean(value: Any) -> Any:
    """NaN and numpy scalars to JSON-ready values."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _choice_key(key: str) -> bool:
    # A section's `_target_` or `name`: its choice, which a row column already names.
    parts = key.split(".")
    return len(parts) == 2 and parts[1] in ("_target_", "name")


def _copied(runs: pd.DataFrame, key: str) -> bool:
    column = key.rsplit(".", 1)[-1]
    if column not in _COLUMNS or column not in runs.columns:
        return False
    return bool((runs[key].astype(str) == runs[column].astype(str)).all())


def varying_keys(runs: pd.DataFrame) -> list[str]:
    """Columns and result-determining config keys with more than one value among runs.

    Args:
        runs: ok rows.
    Returns:
        row columns (data, model, strategy, label columns, experiment, seed), then config keys.
    """
    config = [
        c for c in runs.columns
        if "." in c and c.split(".", 1)[0] in identity.RUN_KEYS and not _choice_key(c)
        and c.rsplit(".", 1)[-1] not in identity.IGNORED_KEYS
    ]  # fmt: skip
    # A config key that a row column copies (pruning.scope is the scope column) is left out.
    config = [c for c in config if not _copied(runs, c)]
    keys = [c for c in (*_COLUMNS, *config) if c in runs.columns]
    if not keys or runs.empty:
        return []
    counts = runs[keys].astype(str).where(runs[keys].notna()).nunique(dropna=True)
    return [k for k in keys if counts[k] > 1]


def _text(value: Any) -> str:
    return MISSING if missing(value) else value_label(value)


def t_quantiles(level: float = LEVEL) -> list[float]:
    """Student's t quantile of a two-sided `level` interval for 1.._T_TABLE degrees of freedom."""
    from scipy.special import stdtrit

    return [round(float(stdtrit(df, 0.5 + level / 2)), 5) for df in range(1, _T_TABLE + 1)]


def payload(summary: Summary, title: str, layer_run: str | None,
            layers: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:  # fmt: skip
    """The data the page's script draws from (plain JSON-ready containers).

    Args:
        summary: from analysis.summarize; its runs are the ok rows behind the points.
        title: the page title.
        layer_run: run id whose per-layer sparsity the page shows first.
        layers: per-layer sparsity by run id (runs without it may be absent).
    """
    pts, runs = summary.points, summary.runs
    found = blocks(summary, "points")
    cards = list(pts.groupby(summary.groups, dropna=False, sort=True).groups)
    card_of = {key if isinstance(key, tuple) else (key,): i for i, key in enumerate(cards)}
    names = list(natural_rank(pts.loc[~is_dense(pts["series"]), "series"]))
    index = {n: i for i, n in enumerate(names)}
    palette = colors(names)
    strategy_of = dict(zip(runs["series"], runs["strategy"].astype(str), strict=True))
    keys = varying_keys(runs)
    short = short_names(runs.columns)
    config_cols = [c for c in runs.columns if "." in c]
    constant = {
        c: clean(runs[c].iloc[0]) for c in config_cols
        if runs[c].astype(str).nunique(dropna=False) == 1 and not missing(runs[c].iloc[0])
    }  # fmt: skip
    varied = [c for c in config_cols if c not in constant]
    out_runs = []
    for r in runs[runs["series"].isin(index)].to_dict("records"):
        out_runs.append({
            "id": r["run_id"], "did": r["dense_id"], "seed": clean(r.get("seed")),
            "g": card_of[tuple(r[k] for k in summary.groups)], "s": index[r["series"]],
            **{name: clean(r.get(col)) for name, col in _METRICS.items()},
            "k": {"series": r["series"], **{k: _text(r[k]) for k in keys}},
            "config": {k: clean(r[k]) for k in varied if clean(r[k]) is not None},
            "layers": {str(k): clean(v) for k, v in (layers.get(r["run_id"]) or {}).items()},
        })  # fmt: skip
    key_values = {k: list(natural_rank(run["k"][k] for run in out_runs)) for k in keys}
    return {
        "title": title,
        "groups": [
            {"title": b.title, "data": str(b.values["data"]), "model": str(b.values["model"])}
            for b in found
        ],
        "series": [{"name": n, "strategy": strategy_of[n], "color": palette[n]} for n in names],
        "strategies": sorted({strategy_of[n] for n in names}),
        "keys": [
            {"key": k, "name": short.get(k, k), "bare": k in BARE, "values": key_values[k]}
            for k in keys
        ],
        "common": constant,
        "runs": out_runs,
        "layerRun": layer_run,
        "palette": PALETTE,
        "t": t_quantiles(),
        "level": LEVEL,
        "delta": summary.delta,
        "costs": summary.costs,
    }
