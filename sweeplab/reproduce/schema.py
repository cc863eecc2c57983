"""The `paper:` block of an experiment file: its dataclasses and check_paper, which validates it.

The block names the published numbers, the values this sweep's rows give (`values`: metric,
row filter, aggregate) and one cell per line of the table, each with a pass rule and its
tolerance. Checks here are structural (types, required keys, expressions naming defined
values); whether a metric or `where:` column exists is asked of the rows (reproduce.values).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from sweeplab.errors import SweeplabError
from sweeplab.reproduce.rules import FUNCTIONS, expression_names, is_number
from sweeplab.reproduce.values import DERIVED

TIERS = ("cpu", "gpu")
AGGS = ("mean", "median", "min", "max", "std", "count", "last")
DEFAULT_SMOKE = ("train.epochs=1", "finetune.epochs=1")
STEP_COMMANDS = ("sensitivity", "run")  # what a `before:` sweep may run


@dataclass(frozen=True)
class ValueSpec:
    """One named quantity computed from the rows: metric, row filter, aggregate."""

    name: str
    metric: str  # a DERIVED metric or a numeric row column
    where: dict[str, Any]  # column (or config.<key>) -> value, or a list of values (any)
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
    # Sweeps run before the experiment's own, in order: [command, override, ...] each, e.g.
    # [sensitivity, pruning.sparsity=0.9]: the curves pruning.distribution=sensitivity reads.
    before: tuple[tuple[str, ...], ...] = ()


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
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise SweeplabError(
            f"{where}={key!r} is not a column name; use one like strategy, seed, round, "
            "sparsity_requested, or config.<section>.<key> (e.g. config.pruning.ratio)"
        )
    return key


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, (str, bool)) or is_number(x)


def _where(block: Any, at: str) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        raise SweeplabError(f"{at}.where={block!r} must be a mapping, e.g. {{round: 3}}")
    for key, wanted in block.items():
        _column(key, f"{at}.where key")
        many = isinstance(wanted, list) and wanted and all(_scalar(w) for w in wanted)
        if not (_scalar(wanted) or many):
            raise SweeplabError(
                f"{at}.where.{key}={wanted!r} must be a number, a string, null or a list of "
                "them (any matches), e.g. strategy: [random, snip]"
            )
    return dict(block)


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
    if not isinstance(metric, str) or not metric.strip():
        raise SweeplabError(
            f"{at}.metric={metric!r} is missing or not a name; give a numeric row column "
            f"(e.g. compression) or one of: {', '.join(DERIVED)}"
        )
    agg = block.get("agg", "mean")
    if agg not in AGGS:
        raise SweeplabError(f"{at}.agg={agg!r} is unknown; choose one of: {', '.join(AGGS)}")
    by = block.get("by")
    if by is not None:
        _column(by, f"{at}.by")
    where_block = block.get("where")
    return ValueSpec(name, metric, _where({} if where_block is None else where_block, at), agg, by)


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


def _before(steps: Any, where: str) -> tuple[tuple[str, ...], ...]:
    example = "e.g. before: [[sensitivity, pruning.sparsity=0.9]]"
    if not isinstance(steps, list) or not all(
        isinstance(s, list) and s and all(isinstance(a, str) for a in s) for s in steps
    ):
        raise SweeplabError(
            f"{where}.before={steps!r} must be a list of lists of strings; {example}"
        )
    for i, step in enumerate(steps):
        if step[0] not in STEP_COMMANDS:
            raise SweeplabError(
                f"{where}.before[{i}][0]={step[0]!r} is no command a sweep runs; start the step "
                f"with one of: {', '.join(STEP_COMMANDS)}, {example}"
            )
    return tuple(tuple(step) for step in steps)


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
    before = _before(block.get("before", []), where)
    return Paper(citation, table, setting, tier, minutes, deviations, smoke, specs, checked, before)
