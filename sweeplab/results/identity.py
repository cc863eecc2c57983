"""Run identity: a hash of exactly the config that determines a run's result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Config sections that determine a run's result. Paths, loggers, launchers and the trainer's
# hardware flags are left out, so moving results or switching loggers keeps every id; the
# trainer settings that change results (TRAINER_RESULT_KEYS) join through trainer_identity.
RUN_KEYS = ("data", "model", "train", "pruning", "schedule", "recovery", "finetune", "seed")
DENSE_KEYS = ("data", "model", "train", "seed")
# Keys inside those sections that are locations, not content.
IGNORED_KEYS = frozenset({"root", "download"})
# Trainer settings that change a run's result (they join both ids when not default). The
# others are hardware, speed or display: deterministic only picks deterministic kernels, which
# on CPU are the ones torch runs anyway (on a GPU it removes run-to-run noise, not a change of
# recipe); benchmark, detect_anomaly, num_sanity_val_steps, progress and threads change no
# weight.
TRAINER_RESULT_KEYS = (
    "precision", "gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches",
    "max_time",
)  # fmt: skip
# Lightning's short precision names -> its full ones ("32-true" is the default, fp32).
PRECISION_NAMES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed"}


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


def precision_name(value: object) -> str:
    """Lightning's full name of a precision setting: 16 -> "16-mixed", null -> "32-true"."""
    text = "32" if value is None else str(value)
    return PRECISION_NAMES.get(text, text)


def max_time_seconds(value: object) -> float | None:
    """trainer.max_time in seconds: a number of seconds or Lightning's "DD:HH:MM:SS"; None
    when it is neither (the trainer checks name the value)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    parts = str(value).split(":")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        return None
    days, hours, minutes, seconds = (int(p) for p in parts)
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def trainer_identity(trainer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The trainer settings that change a run's result, in canonical form, defaults dropped:
    None when all are defaults, so that a config without them keeps its id."""
    t = trainer or {}
    out: dict[str, Any] = {}
    precision = precision_name(t.get("precision"))
    if precision != "32-true":
        out["precision"] = precision
    if t.get("gradient_clip_val"):
        out["gradient_clip_val"] = float(t["gradient_clip_val"])
        if t.get("gradient_clip_algorithm") == "value":  # norm is the default
            out["gradient_clip_algorithm"] = "value"
    if t.get("accumulate_grad_batches") not in (None, 1):
        out["accumulate_grad_batches"] = int(t["accumulate_grad_batches"])
    if t.get("max_time") is not None:
        out["max_time"] = max_time_seconds(t["max_time"])
    return out or None


def _with_trainer(config: Mapping[str, Any]) -> dict[str, Any]:
    """config with its trainer section cut to trainer_identity (None: left out of the hash)."""
    return {**config, "trainer": trainer_identity(config.get("trainer"))}


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
    """Identity of a whole run: data, model, train, pruning, recovery, seed and the trainer
    settings of TRAINER_RESULT_KEYS."""
    return content_id(_with_trainer(config), (*RUN_KEYS, "trainer"))


def run_digest(config: Mapping[str, Any]) -> str:
    """run_id in full (64 hex): what a recovery fit's partial checkpoint records as its config."""
    return content_digest(_with_trainer(config), (*RUN_KEYS, "trainer"))


def dense_id(config: Mapping[str, Any]) -> str:
    """Identity of the dense model a run starts from: data, model, train, seed and the
    trainer settings of TRAINER_RESULT_KEYS (they change dense training too)."""
    return content_id(_with_trainer(config), (*DENSE_KEYS, "trainer"))


def dense_digest(config: Mapping[str, Any]) -> str:
    """dense_id in full (64 hex): what a dense checkpoint records as its config."""
    return content_digest(_with_trainer(config), (*DENSE_KEYS, "trainer"))


def requested_sparsity(pruning: Mapping[str, Any]) -> Any:
    """What a run's pruning section asks for, as its label says: pruning.sparsity, a
    structured strategy's ratio, or 1 - N/M for an N:M pattern given with sparsity null."""
    value = pruning.get("sparsity", pruning.get("ratio"))
    pattern = pruning.get("pattern")
    if value is None and isinstance(pattern, str) and pattern.count(":") == 1:
        n, m = (part.strip() for part in pattern.split(":"))
        if n.isdigit() and m.isdigit() and 0 < int(n) < int(m):
            return 1 - int(n) / int(m)
    return value
