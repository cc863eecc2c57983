"""A config node against its `_target_`'s signature: the keys it takes, the types it declares.

A key the target does not take, or a value that does not fit the parameter's annotation, is one
SweeplabError naming key, value and fix, before the target is called: the check needs no data
and no model, so it runs before any work. Range checks stay with the classes that own them.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from sweeplab.errors import SweeplabError


def locate(path: object, key: str) -> Callable[..., Any]:
    """The callable a `_target_` import path names, or a SweeplabError naming `key._target_`."""
    if path == "???":  # a group file that leaves its target to the user (model=custom)
        raise SweeplabError(
            f"{key}._target_ is not set; name your class, e.g. {key}._target_=mypkg.Net "
            "(importable from the working folder or PYTHONPATH)"
        )
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise SweeplabError(
            f"{key}._target_={path!r} cannot be imported ({e}); use an import path such as "
            "sweeplab.models.mlp.MLP, or choose a file of the group instead"
        ) from None


def _signature(
    target: Callable[..., Any],
) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """The named parameters a target takes, their type hints, and whether it takes any name.

    A class's **kwargs are followed up its bases (a criterion passes them to Pruner).
    """
    functions: list[Callable[..., Any]] = []
    open_ended = False
    if inspect.isclass(target):
        for klass in target.__mro__:
            init = klass.__dict__.get("__init__")
            if klass is object:
                open_ended = True
                break
            if init is None:
                continue
            functions.append(init)
            kinds = {p.kind for p in inspect.signature(init).parameters.values()}
            if inspect.Parameter.VAR_KEYWORD not in kinds:
                break
    else:
        functions = [target]
        kinds = {p.kind for p in inspect.signature(target).parameters.values()}
        open_ended = inspect.Parameter.VAR_KEYWORD in kinds
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for function in functions:
        try:
            found = typing.get_type_hints(function)
        except Exception:  # annotations this module cannot evaluate: checked by the target
            found = {}
        for name, p in inspect.signature(function).parameters.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                params.setdefault(name, p)
                if name in found:
                    hints.setdefault(name, found[name])
    return params, hints, open_ended


def _members(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a union hint (`float | None` -> float, None), else the hint."""
    origin = typing.get_origin(hint)
    return typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)


def _is_sequence(hint: Any) -> bool:
    return typing.get_origin(hint) in (list, tuple, abc.Sequence, abc.Iterable, abc.Collection)


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, abc.Mapping, abc.MutableMapping)


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value fits a type hint (classes it does not know accept anything)."""
    if len(_members(hint)) > 1:
        return any(matches(value, m) for m in _members(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str or (inspect.isclass(hint) and issubclass(hint, PurePath)):
        return isinstance(value, str)  # a path in a config is text
    if typing.get_origin(hint) is typing.Literal:
        return value in typing.get_args(hint)
    args = typing.get_args(hint)
    if _is_sequence(hint):
        item = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        return isinstance(value, list) and all(matches(v, item) for v in value)
    if _is_mapping(hint):
        item = args[1] if len(args) == 2 else Any
        return isinstance(value, Mapping) and all(matches(v, item) for v in value.values())
    return True


_NOUNS = {bool: "true, false", int: "an integer", float: "a number", str: "a string"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}
_EXAMPLES = {bool: "true", int: "1", float: "0.5", str: "NAME"}


def describe(hint: Any) -> str:
    """A type hint in words: `a number or null`, `a list of integers`."""
    words = []
    for m in _members(hint):
        args = typing.get_args(m)
        if m is type(None):
            words.append("null")
        elif typing.get_origin(m) is typing.Literal:
            words.append(f"one of {list(args)}")
        elif _is_sequence(m) or _is_mapping(m):
            item = args[-1] if args and args[-1] is not Ellipsis else (args[0] if args else Any)
            kind = "list" if _is_sequence(m) else "mapping"
            words.append(f"a {kind} of {_PLURALS.get(item, 'values')}")
        else:
            words.extend(_NOUNS.get(m, getattr(m, "__name__", str(m))).split(", "))
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def render(value: Any) -> str:
    """A value as a command-line override writes it (true, null, [300, 100])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {render(v)}" for k, v in value.items()) + "}"
    return str(value)


def _example(p: inspect.Parameter, hint: Any) -> str:
    """A value that fits: the parameter's default when it has one, else one of its type."""
    default = list(p.default) if isinstance(p.default, tuple) else p.default
    if default is not p.empty and default is not None and matches(default, hint):
        return render(default)
    for m in _members(hint):
        if m in _EXAMPLES:
            return _EXAMPLES[m]
        args = typing.get_args(m)
        if _is_sequence(m):
            return f"[{_EXAMPLES.get(args[0] if args else str, 'NAME')}]"
        if _is_mapping(m):
            return f"{{NAME: {_EXAMPLES.get(args[-1] if args else int, '1')}}}"
    return "null"


def is_node(value: Any) -> bool:
    """Whether a config value is a node Hydra instantiates (it has a `_target_`)."""
    return isinstance(value, Mapping) and "_target_" in value


def _children(value: Any, key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Nodes nested in a value: itself, or every member of a mapping or list of nodes
    (a hybrid's criteria)."""
    if is_node(value):
        return [(key, value)]
    items = list(value.items()) if isinstance(value, Mapping) else []
    items = items or (list(enumerate(value)) if isinstance(value, list) else [])
    if items and all(is_node(v) for _, v in items):
        return [(f"{key}.{k}", v) for k, v in items]
    return []


def supplied_arguments(node: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """Of the arguments a run supplies (a model's input_shape, num_classes), those the node's
    target takes: a user's model need not declare what it does not use."""
    params, _, open_ended = _signature(locate(node["_target_"], "model"))
    return {k: v for k, v in values.items() if open_ended or k in params}


def target_name(node: Mapping[str, Any]) -> str:
    """The class (or function) name of a node's `_target_`: a custom model's label."""
    return str(node.get("_target_", "?")).rpartition(".")[2]


def check_node(
    node: Mapping[str, Any], key: str, label: str, supplied: tuple[str, ...] = ()
) -> None:
    """Refuse keys `node`'s target does not take and values that do not fit its annotations.

    Args:
        node: a config node with `_target_` (resolved, plain containers).
        key: its dotted config key, e.g. ``pruning``.
        label: how the user chose it, e.g. ``pruning=global_magnitude``.
        supplied: parameters the run passes itself (a model's input_shape).
    """
    target = locate(node["_target_"], key)
    params, hints, open_ended = _signature(target)
    what = f"{label} ({getattr(target, '__name__', target)})"
    for name, value in node.items():
        full = f"{key}.{name}"
        if str(name).startswith("_"):
            continue
        if name in supplied:
            raise SweeplabError(f"{full} is set by the run itself; remove it")
        if name not in params:
            if open_ended:
                continue
            known = sorted(n for n in params if n not in supplied)
            raise SweeplabError(
                f"{full} is not a setting of {what}; remove it or use one of {known}"
            )
        children = _children(value, full)
        if children:
            for child_key, child in children:
                check_node(child, child_key, child_key)
            continue
        hint = hints.get(name)
        if hint is not None and not matches(value, hint):
            raise SweeplabError(
                f"{full}={'null' if value is None else repr(value)} is not {describe(hint)}; "
                f"use e.g. {full}={_example(params[name], hint)}"
            )
