"""Pass rules and cell values of a paper block: small expressions read with `ast`, never eval.

Numbers, value names, + - * /, comparisons, and/or/not and the functions in FUNCTIONS. A
value may be a pandas Series (a value with `by:`); Series combine on their common labels.

`paired_p(a, b)` states an ordering claim across seeds: the one-sided paired t-test p-value
that a is above b, over the labels (seeds) both have; it is a number that prints as the
statistic it is (p, n, the mean difference and its 95% CI), so the table shows what the rule
used, e.g. `paired_p(g16, l16) < 0.05`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.errors import SweeplabError

FUNCTIONS = ("abs", "min", "max", "sum", "mean", "all", "any", "count", "paired_p")


class Statistic(float):
    """A number that carries how it was computed; `fmt` prints the whole statement."""

    text: str

    def __new__(cls, value: float, text: str) -> Statistic:
        out = super().__new__(cls, value)
        out.text = text
        return out


def paired_p(a: Any, b: Any) -> Statistic:
    """One-sided paired t-test that mean(a - b) > 0 over the labels both Series have.

    NaN (so any `< alpha` rule fails) when fewer than 2 pairs or the differences have no spread.
    """
    from sweeplab.results.stats import paired

    if not (isinstance(a, pd.Series) and isinstance(b, pd.Series)):
        raise SweeplabError("paired_p(a, b) compares two values with by: (e.g. by: seed)")
    x, y = a.align(b, join="inner")
    keep = x.notna() & y.notna()
    x, y = x[keep], y[keep]
    test = paired(list(x), list(y), alternative="greater")
    d = test.diff
    ci = "" if d.low is None else f" [{d.low:+.2f}, {d.high:+.2f}]"
    what = f"paired t, one-sided, n = {d.n}; mean diff {d.mean:+.2f}{ci} 95% CI"
    if test.p is None:
        return Statistic(float("nan"), f"p undefined ({what})")
    return Statistic(test.p, f"p = {test.p:.3g} ({what})")


# ---------------------------------------------------------------------------- expressions


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_))


def fmt(x: Any) -> str:
    """Floats with 2 decimals, integers as integers, Series as {label: value, ...}; a
    Statistic as its statement."""
    if isinstance(x, Statistic):
        return x.text
    if isinstance(x, pd.Series):
        keys = [f"{k:g}" if isinstance(k, float) else fmt(k) for k in x.index]
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in zip(keys, x, strict=True)) + "}"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.2f}"
    return "-" if x is None else str(x)


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}  # fmt: skip
_NOT_ALLOWED = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda"}


def _reject(expr: str, what: str, where: str) -> SweeplabError:
    return SweeplabError(
        f"{where}={expr!r}: {what} is not allowed; use numbers, value names, + - * /, "
        f"comparisons, and/or/not, parentheses and {', '.join(FUNCTIONS)}"
    )


def _names(node: ast.AST, expr: str, where: str) -> set[str]:
    """Names a checked node reads; raises on anything outside the small grammar."""
    if isinstance(node, ast.Constant):
        if is_number(node.value):
            return set()
        raise _reject(expr, f"the constant {node.value!r}", where)
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        children: list[ast.AST] = [node.left, node.right]
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        children = [node.operand]
    elif isinstance(node, ast.BoolOp):
        children = list(node.values)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        children = [node.left, *node.comparators]
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise _reject(expr, f"calling {ast.unparse(node.func)}()", where)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or not node.args:
            raise _reject(expr, f"{name}() without plain positional arguments", where)
        children = list(node.args)
    else:
        op = getattr(node, "op", None) or (getattr(node, "ops", None) or [None])[0]
        what = _NOT_ALLOWED.get(type(node), type(op or node).__name__)
        raise _reject(expr, what, where)
    return set().union(*(_names(c, expr, where) for c in children))


def _parse(expr: str, where: str) -> ast.expr:
    try:
        return ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise SweeplabError(f"{where}={expr!r} is not an expression ({e.msg})") from None


def expression_names(expr: str, where: str = "expression") -> set[str]:
    """The value names an expression reads; raises SweeplabError on syntax outside the grammar."""
    return _names(_parse(expr, where), expr, where)


def _pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Two Series compare and combine on the labels both have (e.g. the seeds both ran)."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        return a.align(b, join="inner")
    return a, b


def _truth(x: Any) -> Any:
    return x.fillna(0).astype(bool) if isinstance(x, pd.Series) else bool(x)


def _both(a: Any, b: Any, either: bool) -> Any:
    a, b = _pair(_truth(a), _truth(b))
    if isinstance(a, pd.Series) or isinstance(b, pd.Series):
        return (a | b) if either else (a & b)
    return (a or b) if either else (a and b)


def _call(name: str, args: list[Any]) -> Any:
    if name == "paired_p":
        if len(args) != 2:
            raise SweeplabError(f"paired_p() takes two values with by:, got {len(args)}")
        return paired_p(*args)
    if name == "abs":
        if len(args) != 1:
            raise SweeplabError(f"abs() takes one argument, got {len(args)}")
        return abs(args[0])
    if len(args) == 1 and isinstance(args[0], pd.Series):
        s = args[0]
        if name in ("all", "any"):
            return bool(getattr(_truth(s), name)())
        return getattr(s, name)()  # min max sum mean count (count: labels with a value)
    if any(isinstance(a, pd.Series) for a in args):
        if name not in ("min", "max"):
            raise SweeplabError(f"{name}() takes one Series or several numbers, not a mix")
        out = args[0]
        for a in args[1:]:
            x, y = _pair(out, a)
            out = np.minimum(x, y) if name == "min" else np.maximum(x, y)
        return out
    scalar = {"min": min, "max": max, "sum": sum, "mean": lambda v: sum(v) / len(v), "count": len,
              "all": lambda v: all(map(bool, v)), "any": lambda v: any(map(bool, v))}  # fmt: skip
    return scalar[name](args)


def _eval(node: ast.AST, values: Mapping[str, Any], expr: str) -> Any:
    def ev(n: ast.AST) -> Any:
        return _eval(n, values, expr)

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        try:
            return _BINARY[type(node.op)](*_pair(ev(node.left), ev(node.right)))
        except ZeroDivisionError:
            raise SweeplabError(f"{expr!r} divides by zero") from None
    if isinstance(node, ast.UnaryOp):
        x = ev(node.operand)
        if isinstance(node.op, ast.Not):
            return ~_truth(x) if isinstance(x, pd.Series) else not x
        return -x if isinstance(node.op, ast.USub) else +x
    if isinstance(node, ast.BoolOp):
        out = ev(node.values[0])
        for n in node.values[1:]:
            out = _both(out, ev(n), either=isinstance(node.op, ast.Or))
        return _truth(out)
    if isinstance(node, ast.Compare):
        left, out = ev(node.left), True
        for op, n in zip(node.ops, node.comparators, strict=True):
            right = ev(n)
            out = _both(out, _COMPARE[type(op)](*_pair(left, right)), either=False)
            left = right
        return out
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _call(node.func.id, [ev(a) for a in node.args])


def evaluate(expr: str, values: Mapping[str, Any], where: str = "expression") -> Any:
    """Evaluate a cell expression over named values (numbers or Series); no eval, no calls out.

    Args:
        expr: e.g. "pruned_err <= 2.0 and sum(g16 >= l16) >= 2".
        values: name -> number or pandas Series.
        where: how errors name the expression.
    Returns:
        A number, a bool, or a Series.
    """
    node = _parse(expr, where)
    unknown = sorted(_names(node, expr, where) - set(values))
    if unknown:
        raise SweeplabError(
            f"{where}={expr!r} uses unknown name {unknown[0]!r}; known values: "
            f"{', '.join(sorted(values)) or '(none)'}"
        )
    return _eval(node, values, expr)


def check_rule(result: Any, rule: str) -> bool:
    """A pass rule's result as a bool; a Series or a bare number is the author's mistake."""
    if isinstance(result, pd.Series):
        raise SweeplabError(
            f"pass rule {rule!r} gives one value per {result.index.name or 'label'}; reduce it "
            "with all(...), any(...) or sum(...) >= k"
        )
    if not isinstance(result, (bool, np.bool_)):
        raise SweeplabError(f"pass rule {rule!r} gives {fmt(result)}, not true/false; compare it")
    return bool(result)
