"""Series: a strategy, split by whatever config varies within it, and how labels read.

Labels are chosen per table group (one (data, model) card): a key that varies in another
card never lengthens this card's labels, and within one strategy only the keys needed to tell
its series apart are shown (`global_magnitude [iterative, finetune]`): label columns by their
value alone, config keys by their shortest unambiguous dotted suffix. A row's full config stays
in the row (the report shows it on hover).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.results import identity
from sweeplab.results.format import missing

# Row columns a series label may carry when they vary within one strategy, in label order.
LABEL_COLUMNS = ("scope", "schedule", "recovery", "granularity")
# Config keys that never split a series: the point's own coordinates (structured strategies
# request a ratio of structures where unstructured ones request a sparsity; the row's
# sparsity_requested holds either), or what a column says already (data, model, strategy,
# schedule and recovery name their section's choice, so its `_target_` and `name` say nothing).
_NOT_SERIES = (
    "pruning.sparsity", "pruning.ratio",
    *(f"{s}.{k}" for s in ("data", "model", "pruning", "schedule", "recovery")
      for k in ("name", "_target_")),
)  # fmt: skip
# Trainer settings that change results split series too (precision, clipping, ...).
_TRAINER = tuple(f"trainer.{k}" for k in identity.TRAINER_RESULT_KEYS)
_DENSE_SECTIONS = (*(f"{k}." for k in identity.DENSE_KEYS), *_TRAINER)
# Only sections that determine a run's result split series (not measure, paths, hardware).
_RESULT_SECTIONS = (*(f"{k}." for k in identity.RUN_KEYS), *_TRAINER)
DENSE = "dense"  # the label of a dense series: "dense", or "dense [train.epochs=5]" when split


def series_keys(ok: pd.DataFrame, groups: list[str], within: list[str], dense: bool) -> list[str]:
    """Columns that vary inside one `within` group: they split it into several series.

    Args:
        ok: ok rows (of one card, for labels computed per card).
        groups: the table groups (never a series key).
        within: the columns of one series before splitting (groups and strategy).
        dense: only keys that determine the dense model (data, model, train, seed).
    Returns:
        label columns first (LABEL_COLUMNS order), then config keys in column order.
    """
    candidates = [
        c
        for c in (*LABEL_COLUMNS, *(c for c in ok.columns if "." in c))
        if c in ok.columns
        and c not in groups
        and c not in _NOT_SERIES
        and ("." not in c or c.startswith(_RESULT_SECTIONS))
        and c.rsplit(".", 1)[-1] not in identity.IGNORED_KEYS
        and (not dense or c.startswith(_DENSE_SECTIONS))
    ]
    if not candidates:
        return []
    # A key set on some rows and absent on others (a default) splits too.
    counts = ok.groupby(within, dropna=False)[candidates].nunique(dropna=False)
    return [c for c in candidates if (counts[c] > 1).any()]


def shown_keys(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The fewest of keys, taken in order, that still tell apart every distinct value tuple.

    Args:
        frame: rows of one strategy in one card.
        keys: its series keys, in label order.
    Returns:
        a sublist of keys: a key joins when it splits what the keys before it leave together.
    """
    if not keys:
        return []
    target = len(frame.drop_duplicates(list(keys)))
    chosen: list[str] = []
    seen = 1
    for key in keys:
        if seen == target:
            break
        n = len(frame.drop_duplicates([*chosen, key]))
        if n > seen:
            chosen.append(key)
            seen = n
    return chosen


def short_names(columns: Iterable[str]) -> dict[str, str]:
    """Each dotted column's shortest dotted suffix that no other column ends with.

    `schedule.rounds` -> `rounds`; `finetune.epochs` stays whole next to `train.epochs`.
    """
    names = [str(c) for c in columns]
    out = {}
    for name in (n for n in names if "." in n):
        parts = name.split(".")
        for i in range(len(parts) - 1, -1, -1):
            suffix = ".".join(parts[i:])
            if not any(o != name and (o == suffix or o.endswith(f".{suffix}")) for o in names):
                out[name] = suffix
                break
    return out


def labels(ok: pd.DataFrame, head: Iterable[str], keys: list[str],
           names: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """Each row's series label: head, then `[value, key=value, ...]` of the keys it has set.

    Args:
        ok: the rows.
        head: each row's strategy (or "dense").
        keys: the keys to show; label columns show their value alone.
        names: how config keys read (short_names); the key itself when absent.
    """
    if not keys:
        return list(head)
    names = names or {}

    def part(key: str, value: Any) -> str:
        text = value_label(value)
        return text if "." not in key else f"{names.get(key, key)}={text}"

    out = []
    for name, *values in zip(head, *(ok[k] for k in keys), strict=True):
        shown = zip(keys, values, strict=True)
        extra = ", ".join(part(k, v) for k, v in shown if not missing(v))
        out.append(f"{name} [{extra}]" if extra else name)
    return out


def card_labels(ok: pd.DataFrame, groups: list[str]) -> tuple[list[str], list[str]]:
    """Each row's series label and its dense model's label, keys chosen per card.

    Args:
        ok: ok rows with a strategy column and the LABEL_COLUMNS.
        groups: the table groups: each value tuple is one card.
    Returns:
        (series labels, dense labels), aligned with ok's rows.
    """
    series = np.empty(len(ok), dtype=object)
    dense = np.empty(len(ok), dtype=object)
    names = short_names(ok.columns)
    within = list(dict.fromkeys([*groups, "strategy"]))
    for at in ok.groupby(groups, dropna=False, sort=False).indices.values():
        card = ok.iloc[at]
        keys = series_keys(card, groups, within, dense=False)
        for part in card.groupby("strategy", dropna=False, sort=False).indices.values():
            rows = card.iloc[part]
            for sub, shown in _per_series(rows, shown_keys(rows, keys)):
                series[at[part[sub]]] = labels(
                    rows.iloc[sub], rows["strategy"].iloc[sub].astype(str), shown, names
                )
        dense_keys = shown_keys(card, series_keys(card, groups, groups, dense=True))
        dense[at] = labels(card, [DENSE] * len(card), dense_keys, names)
    return list(series), list(dense)


def _per_series(rows: pd.DataFrame, shown: list[str]) -> list[tuple[np.ndarray, list[str]]]:
    """Label columns for every row of a strategy; a config key only where it tells apart
    series that the label columns leave together (`[iterative, weight_rewind]` carries no
    finetune.epochs because only the one-shot finetune series differ in it).

    Returns:
        (positions in rows, the keys their labels show), covering every row once.
    """
    columns = [k for k in shown if "." not in k]
    config = [k for k in shown if "." in k]
    if not config:
        return [(np.arange(len(rows)), shown)]
    if not columns:
        return [(np.arange(len(rows)), shown_keys(rows, config))]
    out = []
    for sub in rows.groupby(columns, dropna=False, sort=False).indices.values():
        part = rows.iloc[sub]
        varying = [k for k in config if part[k].nunique(dropna=False) > 1]
        out.append((sub, [*columns, *shown_keys(part, varying)]))
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
