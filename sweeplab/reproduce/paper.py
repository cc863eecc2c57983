"""A paper block (`paper:` in an experiment file): schema, values from rows, the table.

The block names the published numbers, the values this sweep's rows give (`values`: metric,
row filter, aggregate) and one cell per line of the table, each with a pass rule and its
tolerance. Rows and pandas only.
"""

from __future__ import annotations

import keyword
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.reproduce.rules import (
    FUNCTIONS,
    check_rule,
    evaluate,
    expression_names,
    fmt,
    is_number,
)
from sweeplab.results.row import ResultRow

TIERS = ("cpu", "gpu")
AGGS = ("mean", "median", "min", "max", "std", "count", "last")
DEFAULT_SMOKE = ("train.epochs=1", "finetune.epochs=1")
ROW_FIELDS = frozenset(f.name for f in fields(ResultRow))
_NUMERIC_FIELDS = sorted(
    f.name for f in fields(ResultRow) if str(f.type).startswith(("int", "float"))
)


# ---------------------------------------------------------------------------- the paper block


@dataclass(frozen=True)
class ValueSpec:
    """One named quantity computed from the rows: metric, row filter, aggregate."""

    name: str
    metric: str
    where: dict[str, Any]
    agg: str = "mean"
    by: str | None = None  # a row column: the value is then a Series indexed by it


@dataclass(frozen=True)
class Cell:
    """One line of the table: the paper's number, our expression, and the rule that passes it."""

    label: str
    paper: float | str | None
    ours: str
    rule: str  # `pass:` in the file
    tolerance: str


@dataclass(frozen=True)
class Paper:
    """A validated `paper:` block."""

    citation: str
    table: str
    setting: str
    tier: str
    minutes: int | float
    deviations: list[str]
    smoke: list[str]
    values: dict[str, ValueSpec]
    cells: list[Cell]


def _percent(fraction: float) -> float:
    """fraction in %, rounded to 1e-6: accuracies are counts over at most 1e6 examples, so this
    only drops float noise (1 - 0.981 is 0.019000000000000017) that would flip a rule at its
    bound."""
    return round(100 * fraction, 6)


def _pct(key: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda r: None if _num(r, key) is None else _percent(_num(r, key))


def _err(key: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda r: None if _num(r, key) is None else _percent(1 - _num(r, key))


def _weights_nonzero(r: Mapping[str, Any]) -> float | None:
    prunable, sparsity = _num(r, "params_prunable"), _num(r, "sparsity_achieved")
    return None if prunable is None or sparsity is None else round(prunable * (1 - sparsity))


def _flops_reduction(r: Mapping[str, Any]) -> float | None:
    flops, dense = _num(r, "flops"), _num(r, "flops_dense")
    return None if flops is None or not dense else 100 * (1 - flops / dense)


# Metrics besides the numeric row columns: accuracies in %, and the counts papers quote.
DERIVED: dict[str, Callable[[Mapping[str, Any]], float | None]] = {
    "acc": _pct("acc_finetuned_test"),
    "acc_pruned": _pct("acc_pruned_test"),
    "acc_dense": _pct("acc_dense_test"),
    "acc_reinit": _pct("acc_reinit_test"),  # weight_rewind control: same mask, random init
    "error": _err("acc_finetuned_test"),
    "error_pruned": _err("acc_pruned_test"),
    "error_dense": _err("acc_dense_test"),
    "remaining": lambda r: (
        None if _num(r, "sparsity_achieved") is None else _percent(1 - _num(r, "sparsity_achieved"))
    ),
    # measure.checkpoints: the lowest test error among the last checkpoints of recovery, the
    # number the SNIP reference code prints (a test-set choice: report it next to `error`)
    "error_best_checkpoint": lambda r: (
        _percent(1 - max(r["acc_checkpoints_test"])) if r.get("acc_checkpoints_test") else None
    ),
    "weights_nonzero": _weights_nonzero,  # surviving weights of prunable layers
    "flops_reduction": _flops_reduction,
}
METRICS = (*DERIVED, *_NUMERIC_FIELDS)


def _need(block: Mapping[str, Any], key: str, where: str, kinds: tuple[type, ...], fix: str) -> Any:
    value = block.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, kinds):
        raise SweeplabError(f"{where}.{key}={value!r} is missing or invalid; {fix}")
    return value


def _only(block: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(block) - set(allowed))
    if unknown:
        raise SweeplabError(
            f"{where} has unknown key {unknown[0]!r}; use only: {', '.join(allowed)}"
        )


def _column(key: Any, where: str) -> str:
    if not isinstance(key, str) or not (key in ROW_FIELDS or key.startswith("config.")):
        raise SweeplabError(
            f"{where}={key!r} is not a row column; use one like strategy, seed, round, "
            "sparsity_requested, or config.<section>.<key> (e.g. config.pruning.ratio)"
        )
    return key


def _value_spec(name: Any, block: Any, where: str) -> ValueSpec:
    if (
        not isinstance(name, str)
        or not name.isidentifier()
        or keyword.iskeyword(name)
        or (name in FUNCTIONS)
    ):
        raise SweeplabError(
            f"{where} has value name {name!r}; use an identifier that is not one of the "
            f"functions {', '.join(FUNCTIONS)}, e.g. pruned_err"
        )
    at = f"{where}.{name}"
    if not isinstance(block, Mapping):
        raise SweeplabError(f"{at}={block!r} must be a mapping, e.g. {{metric: acc, where: {{}}}}")
    _only(block, ("metric", "where", "agg", "by"), at)
    metric = block.get("metric")
    if metric not in METRICS:
        raise SweeplabError(
            f"{at}.metric={metric!r} is unknown; choose one of: {', '.join(METRICS)}"
        )
    where_block = block.get("where") or {}
    if not isinstance(where_block, Mapping):
        raise SweeplabError(f"{at}.where={where_block!r} must be a mapping, e.g. {{round: 3}}")
    for key in where_block:
        _column(key, f"{at}.where key")
    agg = block.get("agg", "mean")
    if agg not in AGGS:
        raise SweeplabError(f"{at}.agg={agg!r} is unknown; choose one of: {', '.join(AGGS)}")
    by = block.get("by")
    if by is not None:
        _column(by, f"{at}.by")
    return ValueSpec(name, metric, dict(where_block), agg, by)


def _cell(block: Any, i: int, where: str, names: set[str]) -> Cell:
    at = f"{where}[{i}]"
    if not isinstance(block, Mapping):
        raise SweeplabError(f"{at}={block!r} must be a mapping with label, paper, ours, pass")
    _only(block, ("label", "paper", "ours", "pass", "tolerance"), at)
    label = _need(block, "label", at, (str,), "give a string, e.g. label: 'error % at 12x'")
    paper = block.get("paper")
    if isinstance(paper, bool) or not isinstance(paper, (int, float, str, type(None))):
        raise SweeplabError(f"{at}.paper={paper!r} must be a number, a string or null")
    ours = _need(block, "ours", at, (str,), "give an expression, e.g. ours: pruned_err")
    rule = _need(block, "pass", at, (str,), "give a rule, e.g. pass: 'pruned_err <= 2.0'")
    tolerance = _need(block, "tolerance", at, (str,), "say why the rule is that loose")
    for key, expr in (("ours", ours), ("pass", rule)):
        unknown = sorted(expression_names(expr, f"{at}.{key}") - names)
        if unknown:
            raise SweeplabError(
                f"{at}.{key} uses {unknown[0]!r}, which is not a value; define it under "
                f"paper.values or use one of: {', '.join(sorted(names)) or '(none defined)'}"
            )
    return Cell(label, paper, ours, rule, tolerance)


def check_paper(block: Any, where: str = "paper") -> Paper:
    """Validate a `paper:` block; raise a one-line SweeplabError naming the bad key and the fix.

    Args:
        block: the block as plain containers (OmegaConf.to_container).
        where: how errors name the block, e.g. "experiment=han2015: paper".
    Returns:
        The block as a Paper.
    """
    if not isinstance(block, Mapping):
        raise SweeplabError(f"{where}={block!r} must be a mapping with citation, values, cells")
    _only(block, [f.name for f in fields(Paper)], where)
    citation = _need(block, "citation", where, (str,), "give authors, year, title, venue")
    table = _need(block, "table", where, (str,), "e.g. table: 'Table 1, LeNet-300-100'")
    setting = _need(block, "setting", where, (str,), "e.g. setting: 'MNIST, LeNet-300-100'")
    tier = block.get("tier")
    if tier not in TIERS:
        raise SweeplabError(f"{where}.tier={tier!r} must be cpu or gpu; e.g. tier: cpu")
    minutes = _need(block, "minutes", where, (int, float), "expected minutes, e.g. minutes: 6")
    if not minutes > 0 or math.isinf(minutes):
        raise SweeplabError(f"{where}.minutes={minutes!r} must be a positive number, e.g. 6")
    deviations = block.get("deviations", [])
    smoke = block.get("smoke", list(DEFAULT_SMOKE))
    for key, items in (("deviations", deviations), ("smoke", smoke)):
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise SweeplabError(f"{where}.{key}={items!r} must be a list of strings")
    values = _need(block, "values", where, (Mapping,), "e.g. values: {err: {metric: error}}")
    specs = {name: _value_spec(name, spec, f"{where}.values") for name, spec in values.items()}
    cells = block.get("cells")
    if not isinstance(cells, list) or not cells:
        raise SweeplabError(f"{where}.cells={cells!r} must be a non-empty list of cells")
    checked = [_cell(c, i, f"{where}.cells", set(specs)) for i, c in enumerate(cells)]
    return Paper(citation, table, setting, tier, minutes, deviations, smoke, specs, checked)


# ------------------------------------------------------------------------------ value selection


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    return value


def _lookup(row: Mapping[str, Any], key: str) -> Any:
    """A row column, or for `config.a.b` the resolved config's value; None when missing."""
    if not key.startswith("config."):
        return row.get(key)
    node: Any = row.get("config") or {}
    for part in key.split(".")[1:]:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _matches(actual: Any, expected: Any) -> bool:
    if is_number(actual) and is_number(expected):
        return abs(float(actual) - float(expected)) <= 1e-9
    return actual == expected


def metric_value(row: Mapping[str, Any], metric: str) -> float | None:
    """A metric of one row: a numeric column or a DERIVED one; None when the row lacks it."""
    return DERIVED[metric](row) if metric in DERIVED else _num(row, metric)


def _aggregate(values: pd.Series, agg: str, integral: bool) -> float | int:
    """agg over values; a whole result of integer inputs (counts of weights) stays an int."""
    if agg == "count":
        return int(len(values))
    out = values.iloc[-1] if agg == "last" else getattr(values, agg)()
    return int(out) if integral and math.isfinite(out) and float(out).is_integer() else out


def _order(row: Mapping[str, Any]) -> tuple[str, int, str]:
    """Oldest first, rounds in order: `agg: last` takes the newest row."""
    rnd = row.get("round")
    return (
        str(row.get("created_at") or ""),
        rnd if isinstance(rnd, int) else -1,
        str(row.get("run_id")),
    )


def _where_text(where: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in where.items()) + "}"


def compute_value(rows: Iterable[Mapping[str, Any]], spec: ValueSpec) -> Any:
    """The value of spec over the ok rows: a number, or a Series indexed by spec.by.

    Args:
        rows: result rows as dicts (failed rows are ignored).
        spec: metric, filter and aggregate.
    Returns:
        A number, or with `by` a pandas Series named spec.name.
    """
    chosen = sorted(
        (r for r in rows if r.get("status") == "ok"
         and all(_matches(_lookup(r, k), v) for k, v in spec.where.items())),
        key=_order,
    )  # fmt: skip
    points = [(r, metric_value(r, spec.metric)) for r in chosen]
    points = [(r, v) for r, v in points if v is not None]
    if not points:
        lacking = f" ({len(chosen)} match but have no {spec.metric})" if chosen else ""
        raise SweeplabError(
            f"value {spec.name}: no ok row with {spec.metric} matches where "
            f"{_where_text(spec.where)}{lacking}; check the filter against the sweep"
        )
    integral = all(isinstance(v, (int, np.integer)) for _, v in points)
    if spec.by is None:
        return _aggregate(pd.Series([v for _, v in points], dtype=float), spec.agg, integral)
    keys = [_lookup(r, spec.by) for r, _ in points]
    series = pd.Series([v for _, v in points], index=keys, dtype=float)
    groups = series.groupby(level=0, sort=True, dropna=False)
    aggregated = {key: _aggregate(group, spec.agg, integral) for key, group in groups}
    out = pd.Series(aggregated, name=spec.name)
    out.index.name = spec.by
    return out


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class CellResult:
    """One evaluated cell: our number as text and PASS/FAIL (an error fails the cell)."""

    cell: Cell
    ours: str
    passed: bool


def evaluate_cells(paper: Paper, rows: list[dict[str, Any]]) -> list[CellResult]:
    """Compute every value over rows, then every cell; a value's error fails the cells using it."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in paper.values.items():
        try:
            values[name] = compute_value(rows, spec)
        except SweeplabError as e:
            errors[name] = str(e)
    results = []
    for i, cell in enumerate(paper.cells):
        at = f"paper.cells[{i}]"
        used = expression_names(cell.ours, f"{at}.ours") | expression_names(cell.rule, f"{at}.pass")
        broken = [errors[n] for n in sorted(used) if n in errors]
        try:
            if broken:
                raise SweeplabError(broken[0])
            ours = fmt(evaluate(cell.ours, values, f"{at}.ours"))
            passed = check_rule(evaluate(cell.rule, values, f"{at}.pass"), cell.rule)
        except SweeplabError as e:
            ours, passed = f"error: {e}", False
        results.append(CellResult(cell, ours, passed))
    return results


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def compute_minutes(rows: Iterable[Mapping[str, Any]]) -> float:
    """Minutes the rows' runs computed (sum of every row's phase seconds): a cold run's cost.

    Phases nest (a gradual schedule's pruning also counts in its training), so this is an
    upper bound; a row's dense phase is the training itself, or the cache load that replaced it.
    """
    return sum(sum((r.get("seconds") or {}).values()) for r in rows) / 60


def thread_counts(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """The torch thread counts the rows trained with, e.g. "2 (every row)" or "1 (19 rows),
    2 (26 rows): results differ ..."; None when no row recorded one (rows older than the field).

    Float sums reduce in a thread-dependent order, so a table built from rows of mixed counts
    may not match a fresh run at either count.
    """
    counts = Counter(r.get("threads") for r in rows)
    if set(counts) <= {None}:
        return None
    if len(counts) == 1:
        return f"{next(iter(counts))} (every row)"
    parts = [
        f"{'not recorded' if t is None else t} ({n} row{'s' * (n != 1)})"
        for t, n in sorted(counts.items(), key=lambda tn: (tn[0] is None, tn[0] or 0))
    ]
    mixed = len(set(counts) - {None}) > 1
    return ", ".join(parts) + (": results can differ across thread counts" if mixed else "")


def render(
    name: str,
    paper: Paper,
    results: list[CellResult],
    command: str,
    rows_note: str,
    minutes: float | None = None,
    threads: str | None = None,
) -> str:
    """The markdown table `sweeplab reproduce` prints and writes to tables/NAME.md.

    Args:
        minutes: compute minutes of the rows' runs (compute_minutes), shown next to the
            block's expected time.
        threads: the rows' torch thread counts (thread_counts), when recorded.
    """
    unit = "on one GPU" if paper.tier == "gpu" else "on a 2-core CPU"
    measured = [] if minutes is None else [f"- compute: {minutes:.1f} min (the runs' phases)"]
    measured += [] if threads is None else [f"- torch threads: {threads}"]
    lines = [
        f"## {name}",
        "",
        f"- citation: {paper.citation}",
        f"- table: {paper.table}",
        f"- setting: {paper.setting}",
        f"- tier: {paper.tier} (about {fmt(paper.minutes)} min cold {unit})",
        f"- command: `{command}`",
        f"- rows: {rows_note}",
        *measured,
        "- deviations from the paper:" + ("" if paper.deviations else " none"),
        *(f"  - {d}" for d in paper.deviations),
        "",
        "| cell | paper | ours | pass rule | tolerance | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c = r.cell
        paper_value = "-" if c.paper is None else str(c.paper)
        cols = [c.label, paper_value, r.ours, f"`{c.rule}`", c.tolerance]
        lines.append(
            "| " + " | ".join(_md(x) for x in cols) + f" | {'PASS' if r.passed else 'FAIL'} |"
        )
    passed = sum(r.passed for r in results)
    lines += ["", f"{passed}/{len(results)} cells pass", ""]
    return "\n".join(lines)
