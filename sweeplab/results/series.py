"""Series: a strategy, split by whatever config varies within it, and how labels are ordered."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from sweeplab.results import identity
from sweeplab.results.format import missing

# Row columns a series label may carry when they vary within one strategy.
LABEL_COLUMNS = ("scope", "schedule", "recovery", "granularity")
# Config keys that never split a series: the point's own coordinates (structured strategies
# request a ratio of structures where unstructured ones request a sparsity; the row's
# sparsity_requested holds either), or what a label column says already (the strategy,
# schedule and recovery name their section's class).
_NOT_SERIES = (
    "pruning.sparsity", "pruning.ratio", "data.name", "model.name",
    *(f"{s}.{k}" for s in ("pruning", "schedule", "recovery") for k in ("name", "_target_")),
)  # fmt: skip
_DENSE_SECTIONS = tuple(f"{k}." for k in identity.DENSE_KEYS)
DENSE = "dense"  # the label of a dense series: "dense", or "dense [train.epochs=5]" when split


def series_keys(ok: pd.DataFrame, groups: list[str], within: list[str], dense: bool) -> list[str]:
    """Columns that vary inside one `within` group: they split it into several series.

    Args:
        ok: ok rows.
        groups: the table groups (never a series key).
        within: the columns of one series before splitting (groups and strategy).
        dense: only keys that determine the dense model (data, model, train, seed).
    """
    candidates = [
        c
        for c in ok.columns
        if c not in groups
        and c not in _NOT_SERIES
        and (c in LABEL_COLUMNS if "." not in c else not c.startswith("trainer."))
        and c.rsplit(".", 1)[-1] not in identity.IGNORED_KEYS
        and (not dense or c.startswith(_DENSE_SECTIONS))
    ]
    if not candidates:
        return []
    counts = ok.groupby(within, dropna=False)[candidates].nunique(dropna=True)
    return [c for c in candidates if (counts[c] > 1).any()]


def labels(ok: pd.DataFrame, head: Iterable[str], keys: list[str]) -> list[str]:
    """Each row's series label: head, then `[key=value, ...]` of the keys it has set."""
    if not keys:
        return list(head)
    out = []
    for name, *values in zip(head, *(ok[k] for k in keys), strict=True):
        shown = zip(keys, values, strict=True)
        extra = ", ".join(f"{k}={value_label(v)}" for k, v in shown if not missing(v))
        out.append(f"{name} [{extra}]" if extra else name)
    return out


def value_label(value: Any) -> str:
    """A config value as series labels and group titles show it (floats in %g)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_dense(series: pd.Series) -> pd.Series:
    """Which points (by series label) are dense models rather than pruned ones.

    The label, not the strategy column, tells: under `--by strategy` a dense point carries
    the strategy of its group.
    """
    text = series.astype(str)
    return text.eq(DENSE) | text.str.startswith(f"{DENSE} [")


def natural_rank(names: Iterable[str]) -> dict[str, int]:
    """Rank of each label in natural order: numbers inside compare as numbers."""

    def key(label: str) -> list[tuple[int, Any]]:
        parts = re.split(r"(\d+(?:\.\d+)?)", str(label))
        return [(1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts)]

    return {label: i for i, label in enumerate(sorted(set(names), key=key))}
