"""A paper block's values from rows: metrics (columns or derived), the `where:` filter, aggregates.

Rows are the DataFrame `sweeplab.results.rows.load_rows` reads; `where:` goes through
`sweeplab.results.filters.matches`, the filter behind `sweeplab table --where`. Column names are
checked here, against the rows, not against a fixed list: rows carry an open set of metrics.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.reproduce.rules import is_number
from sweeplab.results import filters

if TYPE_CHECKING:
    from sweeplab.reproduce.schema import ValueSpec

# `where:` numbers compare to 9 decimals: a round's computed sparsity (1 - 0.8**3) matches 0.488.
DECIMALS = 9


def percent(fraction: float) -> float:
    """fraction in %, rounded to 1e-6: accuracies are counts over at most 1e6 examples, so this
    only drops float noise (1 - 0.981 is 0.019000000000000017) that would flip a rule at its
    bound."""
    return round(100 * float(fraction), 6)


def _present(value: Any) -> bool:
    """A usable input: a number (not a bool, not NaN) or a list (acc_checkpoints_test)."""
    if isinstance(value, list):
        return True
    return is_number(value) and not math.isnan(value)


@dataclass(frozen=True)
class Derived:
    """A metric computed from row columns (`inputs`); None when a row lacks one of them."""

    inputs: tuple[str, ...]
    compute: Callable[..., float | None]
    integral: bool = False  # counts (of weights) print as integers

    def __call__(self, row: Mapping[str, Any]) -> float | None:
        args = [row.get(key) for key in self.inputs]
        return self.compute(*args) if all(_present(a) for a in args) else None


# Metrics besides the numeric row columns: accuracies in %, and the counts papers quote.
DERIVED: dict[str, Derived] = {
    "acc": Derived(("acc_finetuned_test",), percent),
    "acc_pruned": Derived(("acc_pruned_test",), percent),
    "acc_dense": Derived(("acc_dense_test",), percent),
    # weight_rewind control: the same mask, random init
    "acc_reinit": Derived(("acc_reinit_test",), percent),
    "error": Derived(("acc_finetuned_test",), lambda a: percent(1 - a)),
    "error_pruned": Derived(("acc_pruned_test",), lambda a: percent(1 - a)),
    "error_dense": Derived(("acc_dense_test",), lambda a: percent(1 - a)),
    "remaining": Derived(("sparsity_achieved",), lambda s: percent(1 - s)),
    # measure.checkpoints: the lowest test error among the last checkpoints of recovery, the
    # number the SNIP reference code prints (a test-set choice: report it next to `error`)
    "error_best_checkpoint": Derived(
        ("acc_checkpoints_test",), lambda accs: percent(1 - max(accs)) if accs else None
    ),
    # surviving weights of prunable layers
    "weights_nonzero": Derived(
        ("params_prunable", "sparsity_achieved"), lambda p, s: round(p * (1 - s)), integral=True
    ),
    "flops_reduction": Derived(
        ("flops", "flops_dense"), lambda f, dense: 100 * (1 - f / dense) if dense else None
    ),
}


def _column_name(key: str) -> str:
    """`config.train.lr` is the column train.lr (load_rows flattens the config that way)."""
    return key.removeprefix("config.")


def _get(df: pd.DataFrame, key: str) -> pd.Series:
    """A column, or nulls where no row has it."""
    return df[key] if key in df else pd.Series(None, index=df.index, dtype=object)


def _numbers(column: pd.Series) -> pd.Series:
    """The column's numbers (bools, text and lists are NaN)."""
    kept = column.map(lambda v: float(v) if is_number(v) else np.nan)
    return kept.astype(float)


def metric_values(df: pd.DataFrame, metric: str, source: str) -> tuple[pd.Series, bool]:
    """One metric per row (NaN where a row lacks it), and whether it counts (prints as an int).

    Args:
        df: rows from load_rows.
        metric: a DERIVED name or a numeric column.
        source: how errors name the rows, e.g. "experiment=han2015_lenet300's rows".
    Returns:
        (values indexed like df, integral).
    """
    if metric in DERIVED:
        derived = DERIVED[metric]
        columns = [_get(df, c) for c in derived.inputs]
        rows = zip(*columns, strict=True)
        values = [derived(dict(zip(derived.inputs, vals, strict=True))) for vals in rows]
        return pd.Series(values, index=df.index, dtype=object), derived.integral
    if metric not in df:
        raise SweeplabError(
            f"metric {metric!r} is neither a column of {source} nor a derived metric; choose "
            f"one of {', '.join(DERIVED)} or a numeric column such as acc_finetuned_test"
        )
    numbers = _numbers(df[metric])
    known = numbers.dropna()
    if known.empty and df[metric].notna().any():
        raise SweeplabError(f"metric {metric!r} is not a number in {source}; use a numeric column")
    # JSON ints become floats in a column with gaps: a column of whole numbers is a count.
    integral = bool(len(known)) and bool((known == known.round()).all())
    return numbers, integral


def _mask(column: pd.Series, wanted: Any) -> pd.Series:
    """Rows whose entry equals wanted (any of a list; null matches missing; numbers as numbers)."""
    if isinstance(wanted, list):
        masks = [_mask(column, w) for w in wanted]
        return pd.concat(masks, axis=1).any(axis=1) if masks else column.isna() & False
    if wanted is None:
        return column.isna()
    if isinstance(wanted, str) and pd.api.types.is_numeric_dtype(column):
        with contextlib.suppress(ValueError):
            wanted = float(wanted)  # a quoted number ('0.5') on a numeric column
    if is_number(wanted):
        rounded = _numbers(column).round(DECIMALS)
        return filters.matches(rounded, [repr(float(np.round(float(wanted), DECIMALS)))])
    return filters.matches(column, [str(wanted)])


def _where_text(where: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in where.items()) + "}"


def _text(value: Any) -> str:
    whole = isinstance(value, float) and value.is_integer()
    return str(int(value)) if whole else str(value)


def _shown(column: pd.Series, limit: int = 10) -> str:
    values = sorted({_text(v) for v in column.dropna()})
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more if values else "no values"


def select(df: pd.DataFrame, spec: ValueSpec, source: str) -> pd.DataFrame:
    """The ok rows matching spec.where, oldest first (rounds in order: `agg: last` is newest).

    A key no row has reads as null in every row, so `key: null` keeps them all; any other
    value on a missing key is an error naming the key.
    """
    rows = df[df["status"] == "ok"] if "status" in df else df.iloc[:0]
    for key, wanted in spec.where.items():
        column = _column_name(key)
        if column in rows:
            kept = rows[_mask(rows[column], wanted)]
        elif wanted is None:
            kept = rows
        else:
            raise SweeplabError(
                f"value {spec.name}: where key {key!r} is no column of {source}; "
                f"{filters.columns_hint(df)}"
            )
        if kept.empty and not rows.empty:
            raise SweeplabError(
                f"value {spec.name}: no ok row with {spec.metric} matches where "
                f"{_where_text(spec.where)} ({key} has: {_shown(rows[column])}); "
                "check the filter against the sweep"
            )
        rows = kept
    order = pd.DataFrame(
        {
            "created": _get(rows, "created_at").fillna("").map(str),
            "round": _numbers(_get(rows, "round")).fillna(-1),
            "run_id": _get(rows, "run_id").map(str),
        }
    )
    return rows.loc[order.sort_values(list(order.columns), kind="stable").index]


def _aggregate(values: pd.Series, agg: str, integral: bool) -> float | int:
    """agg over values; a whole result of a count metric (weights) stays an int."""
    if agg == "count":
        return int(len(values))
    out = values.iloc[-1] if agg == "last" else getattr(values, agg)()
    return int(out) if integral and math.isfinite(out) and float(out).is_integer() else out


def compute_value(df: pd.DataFrame, spec: ValueSpec, source: str = "the rows") -> Any:
    """The value of spec over the ok rows: a number, or a Series indexed by spec.by.

    Args:
        df: rows from load_rows (failed rows are ignored).
        spec: metric, filter and aggregate.
        source: how errors name the rows, e.g. "experiment=han2015_lenet300's rows".
    Returns:
        A number, or with `by` a pandas Series named spec.name.
    """
    chosen = select(df, spec, source)
    try:
        # over every row: whether a column holds counts is a property of the column
        values, integral = metric_values(df, spec.metric, source)
    except SweeplabError as e:
        raise SweeplabError(f"value {spec.name}: {e}") from None
    values = values.loc[chosen.index].dropna()
    if values.empty:
        lacking = f" ({len(chosen)} match but have no {spec.metric})" if len(chosen) else ""
        raise SweeplabError(
            f"value {spec.name}: no ok row with {spec.metric} matches where "
            f"{_where_text(spec.where)}{lacking}; check the filter against the sweep"
        )
    numbers = values.astype(float)
    if spec.by is None:
        return _aggregate(numbers, spec.agg, integral)
    by = _column_name(spec.by)
    if by not in chosen:
        raise SweeplabError(
            f"value {spec.name}: by {spec.by!r} is no column of {source}; "
            f"{filters.columns_hint(df)}"
        )
    series = pd.Series(numbers.to_numpy(), index=chosen.loc[values.index, by].to_numpy())
    groups = series.groupby(level=0, sort=True, dropna=False)
    out = pd.Series({key: _aggregate(g, spec.agg, integral) for key, g in groups}, name=spec.name)
    out.index.name = spec.by
    return out
