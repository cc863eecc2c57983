"""Which `_target_`s a row may name when a run is rebuilt from it (`sweeplab export`).

A row is data: anyone who can write a file into a results dir can write one. Hydra's
instantiate imports and calls whatever `_target_` names, and its block list stops only a few
callables (os.system, eval), not the many that read files (a pickle loader runs the pickle).
So a row's config is rebuilt only when every `_target_` in it is one the project's own config
groups use in that section (conf/<group>/*.yaml and the experiment files), or one the user
names for that key on the command line (their own model class); anything else is refused
before anything is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sweeplab.configs import CONF
from sweeplab.errors import SweeplabError

_TARGET = "_target_"


def targets_in(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every `_target_` in a config of plain containers, at any depth.

    Args:
        node: the config (mappings, lists, scalars).
        prefix: the dotted key of node (its children's keys start with it).
    """
    if isinstance(node, Mapping):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if k == _TARGET:
                yield key, v
            else:
                yield from targets_in(v, key + ".")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from targets_in(v, f"{prefix}{i}.")


@cache
def project_targets(conf: Path = CONF) -> dict[str, frozenset[str]]:
    """Config section -> the `_target_`s the project's config files put in it.

    A file of group G (conf/G/...) fills section G, unless it is `# @package _global_` (an
    experiment), whose top-level keys are the sections.
    """
    found: dict[str, set[str]] = {}
    for path in sorted(conf.rglob("*.yaml")):
        text = path.read_text()
        content = yaml.safe_load(text) or {}
        if not isinstance(content, dict):
            continue
        if "@package _global_" in text.split("\n", 1)[0] or path.parent == conf:
            sections = {k: v for k, v in content.items() if k != "defaults"}
        else:
            sections = {path.relative_to(conf).parts[0]: content}
        for section, node in sections.items():
            for _, target in targets_in(node):
                if isinstance(target, str):
                    found.setdefault(str(section), set()).add(target)
    return {k: frozenset(v) for k, v in found.items()}


def parse_trusted(args: list[str]) -> dict[str, str]:
    """`KEY._target_=CLASS` command-line arguments as {KEY._target_: CLASS}.

    Raises SweeplabError for any other argument.
    """
    trusted: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if key == "paths.results_dir" and eq:  # `run`'s way of naming the folder, not export's
            raise SweeplabError(
                f"{arg!r}: export reads the results folder from --results-dir, e.g. "
                f"sweeplab export RUN_ID OUT --results-dir {value or 'results'}"
            )
        if not eq or not key.endswith(f".{_TARGET}") or not value:
            raise SweeplabError(
                f"{arg!r} is not KEY._target_=CLASS; name your own classes the row uses, e.g. "
                "model._target_=mypackage.Net"
            )
        trusted[key] = value
    return trusted


def check_row_targets(
    config: Mapping[str, Any], row_file: Path, trusted: Mapping[str, str]
) -> None:
    """Raise SweeplabError (one line: the file and the target) unless every `_target_` in a
    row's config is the project's (for its section) or named for its key on the command line.

    Args:
        config: the row's config, with today's target names (identity.current_targets).
        row_file: the row file it came from.
        trusted: {dotted key: target} the user named on the command line.
    """
    allowed = project_targets()
    for key, target in targets_in(config):
        section = key.split(".", 1)[0]
        if trusted.get(key) == target or target in allowed.get(section, ()):
            continue
        raise SweeplabError(
            f"{row_file} names {key}={target!r}, which is not a sweeplab class for {section}; "
            f"a row is data and is not run: if {target!r} is your own code, name it on the "
            f"command line (sweeplab export RUN_ID OUT {key}={target})"
        )
