"""Objectives a hyper-parameter search (Hydra's Optuna sweeper) reads from finished rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeplab.errors import SweeplabError
from sweeplab.results.row import ResultRow
from sweeplab.results.store import read_row, row_path

# Objectives a search (conf/hparams_search) may name besides the row's numeric columns.
DERIVED_OBJECTIVES = ("sparsity_within_drop",)


def _numeric_columns() -> list[str]:
    from dataclasses import fields

    numeric = (f for f in fields(ResultRow) if str(f.type).split(" |")[0] in ("float", "int"))
    return [f.name for f in numeric if f.name not in ("seed", "round", "schema_version")]


def check_objectives(names: Iterable[str]) -> list[str]:
    """Return the objective names as a list, or raise SweeplabError naming an unknown one.

    Args:
        names: `search.objectives`: numeric row columns or derived objectives.
    Returns:
        The names, in order.
    """
    known = [*_numeric_columns(), *DERIVED_OBJECTIVES]
    names = [str(n) for n in names]
    for name in names:
        if name not in known:
            raise SweeplabError(
                f"search.objectives names {name!r}, which is not a numeric row column; "
                f"choose from: {', '.join(known)}"
            )
    return names


def objective_values(row: Mapping[str, Any], names: Iterable[str], max_drop: float) -> list[float]:
    """The values of one finished row that a search optimizes (Optuna's objective values).

    `sparsity_within_drop` is the achieved sparsity when the recovered model is at most
    max_drop below dense on the validation split, else minus that drop: any run within the
    budget beats any run outside it, and closer misses rank higher.

    Args:
        row: an ok row.
        names: objective names (see check_objectives).
        max_drop: allowed validation-accuracy drop as a fraction (0.01 = 1 point).
    Returns:
        One float per name.
    """
    values = []
    for name in check_objectives(names):
        if name == "sparsity_within_drop":
            drop = float(row["acc_dense_val"]) - float(row["acc_finetuned_val"])
            value = row["sparsity_achieved"] if drop <= max_drop else -drop
        else:
            value = row.get(name)
        if value is None:
            raise SweeplabError(
                f"run {row.get('run_id')} has no value for objective {name!r}; "
                "choose a column its schedule and recovery fill in"
            )
        values.append(float(value))
    return values


def objectives(
    results_dir: str | Path, rid: str, names: Iterable[str], max_drop: float
) -> list[float]:
    """Objective values of a finished run, read back from its row (also for skipped runs)."""
    return objective_values(read_row(row_path(results_dir, rid)), names, max_drop)
