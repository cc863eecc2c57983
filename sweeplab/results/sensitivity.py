"""Sensitivity rows (`sweeplab sensitivity`): told apart from sweep rows, as curves, as a table.

A sensitivity row is one layer (or channel group) of one dense model pruned alone at one rate,
without retraining: schedule "sensitivity", fields layer, rate, acc_val, acc_test, acc_drop
(validation accuracy lost against the dense model, a fraction) and acc_drop_test. They are no
points of a sweep: `table` and `report` views of runs leave them out (`ordinary`), `--view
sensitivity` and the report's sensitivity section show only them, one line per layer.

pandas only: `sweeplab table` never imports torch or Lightning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.results import identity
from sweeplab.results.format import missing
from sweeplab.results.layout import Block, Table

SCHEDULE = "sensitivity"  # the schedule label of sensitivity rows
# Pruning keys that say how much, or which layers, a run prunes, not how a layer is scored:
# left out of the criterion a curve belongs to.
AMOUNT_KEYS = ("sparsity", "ratio", "distribution", "erk_power_scale", "exclude",
               "layer_scale", "layer_ratio")  # fmt: skip
FIELDS = ["data", "model", "strategy", "analysis", "layer", "layer_index", "layer_size",
          "layer_unit", "rate", "acc_drop", "acc_drop_test", "acc_val", "acc_test",
          "acc_dense_val", "acc_dense_test", "n", "run_ids"]  # fmt: skip


def is_sensitivity(rows: pd.DataFrame) -> pd.Series:
    """Which rows are sensitivity rows (their schedule label)."""
    if "schedule" not in rows.columns:
        return pd.Series(False, index=rows.index)
    return rows["schedule"] == SCHEDULE


def ordinary(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs: every row but the sensitivity rows."""
    return rows[~is_sensitivity(rows)]


def criterion_digest(pruning: Mapping[str, Any]) -> str:
    """Which criterion a curve was measured with: the pruning section without AMOUNT_KEYS.

    A run with pruning.distribution=sensitivity reads the curves whose digest equals its own.
    """
    kept = {k: v for k, v in pruning.items() if k not in AMOUNT_KEYS}
    return identity.content_id({"pruning": kept}, ["pruning"])


def analysis_digest(config: Mapping[str, Any]) -> str:
    """One analysis across seeds: the dense recipe without the seed, and the criterion."""
    dense = {k: config.get(k) for k in identity.DENSE_KEYS if k != "seed"}
    dense["trainer"] = identity.trainer_identity(config.get("trainer"))
    dense["criterion"] = criterion_digest(config.get("pruning") or {})
    return identity.content_id(dense, list(dense))


def curve_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The ok sensitivity rows as curve points: means over seeds per (analysis, layer, rate).

    Returns:
        FIELDS columns, one line per (data, model, strategy, analysis, layer, rate); drops and
        accuracies are fractions; n counts the dense models (seeds) pooled.
    """
    ok = rows[is_sensitivity(rows) & (rows["status"] == "ok")] if len(rows) else rows
    if ok.empty:
        return pd.DataFrame(columns=FIELDS)
    ok = ok.copy()
    for column in FIELDS[4:-2]:
        if column not in ok.columns:
            ok[column] = None
        if column not in ("layer", "layer_unit"):
            ok[column] = pd.to_numeric(ok[column], errors="coerce")
    keys = ["data", "model", "strategy", "analysis", "layer", "rate"]
    means = {c: (c, "mean") for c in FIELDS[9:15]}
    frame = ok.groupby(keys, dropna=False, sort=False).agg(
        layer_index=("layer_index", "min"), layer_size=("layer_size", "first"),
        layer_unit=("layer_unit", "first"), **means, n=("acc_drop", "count"),
        run_ids=("run_id", lambda ids: " ".join(sorted(ids))),
    )  # fmt: skip
    frame = frame.reset_index().sort_values(["data", "model", "strategy", "analysis",
                                             "layer_index", "rate"])  # fmt: skip
    return frame[FIELDS].reset_index(drop=True)


def curves(results_dir: str | Path, dense_id: str, criterion: str) -> dict[str, list]:
    """The curves of one dense model and criterion, from a results dir's sensitivity rows.

    Args:
        results_dir: the folder holding runs/.
        dense_id: the dense model's id.
        criterion: criterion_digest of the pruning section.
    Returns:
        layer (module or group name) -> [(rate, validation accuracy drop)], by rate; {} when
        the folder holds none.
    """
    from sweeplab.results.rows import load_rows

    if not (Path(results_dir) / "runs").is_dir():
        return {}
    df = load_rows(results_dir)
    if "criterion" not in df.columns:
        return {}
    mine = df[is_sensitivity(df) & (df["status"] == "ok") & (df["dense_id"] == dense_id)
              & (df["criterion"] == criterion)]  # fmt: skip
    found: dict[str, list] = {}
    for layer, sub in mine.groupby("layer", sort=False):
        points = sub.groupby("rate")["acc_drop"].mean()
        found[str(layer)] = [(float(r), float(d)) for r, d in points.items()]
    return found


def _cell(value: Any) -> str:
    return "" if missing(value) else f"{100 * value:.2f}"


def analyses(frame: pd.DataFrame) -> Iterator[tuple[tuple[str, str], str, pd.DataFrame]]:
    """Each analysis of a curve_frame: ((data, model), its label, its points), in table order.

    The label is the strategy, with the analysis id where one card holds several analyses of
    the same strategy (e.g. two dense recipes).
    """
    for card, points in frame.groupby(["data", "model"], sort=True):
        several = points.groupby("strategy")["analysis"].nunique()
        for (strategy, analysis), sub in points.groupby(["strategy", "analysis"], sort=True):
            label = f"{strategy} (analysis {analysis})" if several[strategy] > 1 else strategy
            yield (str(card[0]), str(card[1])), str(label), sub


def table(label: str, sub: pd.DataFrame) -> Table:
    """One analysis as a table: a line per layer (model order), a column per rate."""
    rates = sorted(sub["rate"].unique())
    lines = []
    for layer, line in sub.groupby("layer", sort=False):
        at = dict(zip(line["rate"], line["acc_drop"], strict=True))
        size = line["layer_size"].iloc[0]
        lines.append([str(layer), "" if missing(size) else f"{size:,.0f}",
                      *(_cell(at.get(r)) for r in rates)])  # fmt: skip
    seeds = "/".join(str(n) for n in sorted(set(sub["n"])))
    return Table(
        caption=f"Sensitivity of each layer to {label}: validation accuracy points lost when "
        "only that layer is pruned at the rate, no retraining",
        headers=["layer", str(sub["layer_unit"].iloc[0] or "weights"), *(f"{r:g}" for r in rates)],
        rows=lines,
        align="lr" + "r" * len(rates),
        note=f"dense validation accuracy {_cell(sub['acc_dense_val'].mean())}%; mean over "
        f"{seeds} dense model(s); negative: pruning raised it; test split: --format csv or json",
    )


def blocks(rows: pd.DataFrame) -> list[Block]:
    """One Block per (data, model) holding one table per analysis (`table`)."""
    found: dict[tuple[str, str], list[Table]] = {}
    for card, label, sub in analyses(curve_frame(rows)):
        found.setdefault(card, []).append(table(label, sub))
    return [Block(f"{d} / {m}", {"data": d, "model": m}, t) for (d, m), t in found.items()]


def text(rows: pd.DataFrame, fmt: str) -> str:
    """The curves as csv or json text (md and latex: `blocks` through results.render).

    csv and json hold curve_frame: one line per (analysis, layer, rate), test drops too.
    """
    frame = curve_frame(rows)
    if fmt == "csv":
        return frame.to_csv(index=False)
    records = [{k: (None if missing(v) else v) for k, v in r.items()}
               for r in frame.to_dict("records")]  # fmt: skip
    return json.dumps(records, indent=1, default=str) + "\n"
