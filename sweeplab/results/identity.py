"""Run identity: a hash of exactly the config that determines a run's result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Config sections that determine a run's result. Paths, loggers, launchers and hardware flags
# (trainer) are left out, so moving results or switching loggers keeps every id.
RUN_KEYS = ("data", "model", "train", "pruning", "schedule", "recovery", "finetune", "seed")
DENSE_KEYS = ("data", "model", "train", "seed")
# Keys inside those sections that are locations, not content.
IGNORED_KEYS = frozenset({"root", "download"})


# A class's identity is the import path it had when run ids were first pinned: moving a class
# to another module must not change the id of any run that uses it.
TARGET_NAMES = {
    "sweeplab.engine.schedules.": "sweeplab.pruning.schedules.",
    "sweeplab.engine.recovery.": "sweeplab.recovery.",
    "sweeplab.engine.weight_sharing.WeightSharing": "sweeplab.recovery.WeightSharing",
    "sweeplab.pruning.structured.BlockRemoval": "sweeplab.pruning.blocks.BlockRemoval",
}


def identity_target(target: str) -> str:
    """The name a `_target_` import path is hashed under (see TARGET_NAMES)."""
    for new, old in sorted(TARGET_NAMES.items(), key=lambda no: -len(no[0])):  # longest first
        if target.startswith(new):
            return old + target[len(new) :]
    return target


def current_targets(config: Any) -> Any:
    """A copy of config whose `_target_` paths are today's (the reverse of identity_target):
    rows written before a class moved name it where it lived then."""
    if isinstance(config, Mapping):
        out = {}
        for k, v in config.items():
            if k == "_target_" and isinstance(v, str):
                for new, old in sorted(TARGET_NAMES.items(), key=lambda no: -len(no[1])):
                    if v.startswith(old):
                        v = new + v[len(old) :]
                        break
                out[k] = v
            else:
                out[k] = current_targets(v)
        return out
    if isinstance(config, list):
        return [current_targets(v) for v in config]
    return config


def _canonical(value: Any) -> Any:
    """Drop null values (a new option defaulting to null keeps old ids) and location keys."""
    if isinstance(value, Mapping):
        return {
            str(k): identity_target(v) if k == "_target_" and isinstance(v, str) else _canonical(v)
            for k, v in sorted(value.items())
            if v is not None and str(k) not in IGNORED_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def content_digest(config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """Full sha256 of the canonical JSON of config[keys].

    Args:
        config: the resolved config as plain containers.
        keys: top-level sections that determine the result.
    Returns:
        64 hex characters.
    """
    subset = _canonical({k: config.get(k) for k in keys})
    blob = json.dumps(subset, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def content_id(config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """The first 12 hex characters of content_digest: short enough to name files."""
    return content_digest(config, keys)[:12]


def run_id(config: Mapping[str, Any]) -> str:
    """Identity of a whole run: data, model, train, pruning, recovery and seed."""
    return content_id(config, RUN_KEYS)


def dense_id(config: Mapping[str, Any]) -> str:
    """Identity of the dense model a run starts from: data, model, train and seed."""
    return content_id(config, DENSE_KEYS)


def dense_digest(config: Mapping[str, Any]) -> str:
    """dense_id in full (64 hex): what a dense checkpoint records as its config."""
    return content_digest(config, DENSE_KEYS)
