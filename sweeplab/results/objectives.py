"""Objectives a hyper-parameter search (Hydra's Optuna sweeper) reads from finished rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeplab.errors import SweeplabError
from sweeplab.results.row import CORE, flatten
from sweeplab.results.store import read_row, row_path

# Objectives a search (conf/hparams_search) may name besides the row's numeric metrics.
DERIVED_OBJECTIVES = ("sparsity_within_drop",)
# Numeric core fields a search may still optimize; the other core fields are not results.
_CORE_OBJECTIVES = ("sparsity_requested",)


def check_objectives(names: Iterable[str]) -> list[str]:
    """Return the objective names as a list, or raise SweeplabError naming one that cannot be.

    Metrics are open (any numeric metric a run records), so a name is refused only when it is
    a row's core field that is no result (run_id, strategy, seed, ...) or not a name at all;
    a metric the run did not record is named when its value is read (objective_values).

    Args:
        names: `search.objectives`: numeric metrics or derived objectives.
    Returns:
        The names, in order.
    """
    names = [str(n) for n in names]
    for name in names:
        if not name.isidentifier() or (name in CORE and name not in _CORE_OBJECTIVES):
            raise SweeplabError(
                f"search.objectives names {name!r}, which is not a numeric row column; "
                "choose from: a numeric metric (acc_finetuned_val, compression, ...), "
                f"{', '.join((*_CORE_OBJECTIVES, *DERIVED_OBJECTIVES))}"
            )
    return names


def objective_values(row: Mapping[str, Any], names: Iterable[str], max_drop: float) -> list[float]:
    """The values of one finished row that a search optimizes (Optuna's objective values).

    `sparsity_within_drop` is the achieved sparsity when the recovered model is at most
    max_drop below dense on the validation split, else minus that drop: any run within the
    budget beats any run outside it, and closer misses rank higher.

    Args:
        row: an ok row, flat (store.read_row) or as its file holds it.
        names: objective names (see check_objectives).
        max_drop: allowed validation-accuracy drop as a fraction (0.01 = 1 point).
    Returns:
        One float per name.
    """
    row = flatten(row)
    values = []
    for name in check_objectives(names):
        if name == "sparsity_within_drop":
            if not _is_number(row.get("acc_dense_val")):  # static, SET, RigL: no dense model
                raise SweeplabError(
                    f"run {row.get('run_id')} ({row.get('strategy')}) has no dense accuracy to "
                    "measure a drop from; search it with other objectives, e.g. "
                    "hparams_search=pareto"
                )
            drop = float(row["acc_dense_val"]) - float(row["acc_finetuned_val"])
            value = row["sparsity_achieved"] if drop <= max_drop else -drop
        else:
            value = row.get(name)
        if not _is_number(value):
            numeric = sorted(k for k, v in row.items() if _is_number(v) and k not in CORE)
            raise SweeplabError(
                f"run {row.get('run_id')} has no numeric value for objective {name!r}; "
                f"choose from the metrics it recorded: {', '.join(numeric)}"
            )
        values.append(float(value))
    return values


def objectives(
    results_dir: str | Path, rid: str, names: Iterable[str], max_drop: float
) -> list[float]:
    """Objective values of a finished run, read back from its row (also for skipped runs)."""
    return objective_values(read_row(row_path(results_dir, rid)), names, max_drop)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
