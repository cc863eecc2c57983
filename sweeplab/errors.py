"""User-facing errors: each names the bad value and the fix, and ends the run with no row."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path


class SweeplabError(Exception):
    """A problem with the user's input (config, data, paths); reported as one line, exit 2."""


def check_fraction(key: str, value: object, *, example: str = "0.9") -> float:
    """Return value as a float in [0, 1) or raise SweeplabError naming key and value.

    Args:
        key: the config key the value came from, e.g. ``pruning.sparsity``.
        value: the raw value.
        example: a valid value shown in the fix.
    Returns:
        The value as a float.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SweeplabError(
            f"{key}={value!r} is not a number; use a float in [0, 1), e.g. {key}={example}"
        )
    try:
        number = float(value)
    except ValueError:
        raise SweeplabError(
            f"{key}={value!r} is not a number; use a float in [0, 1), e.g. {key}={example}"
        ) from None
    if math.isnan(number) or not 0.0 <= number < 1.0:
        raise SweeplabError(f"{key}={value} is outside [0, 1); use e.g. {key}={example}")
    return number


def check_positive(key: str, value: object, *, integer: bool = False, example: str = "10") -> float:
    """Return value if it is a positive number (an integer when asked), else raise SweeplabError
    naming key and value, with `example` as the fix."""
    kind = "integer" if integer else "number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not value > 0 or math.isinf(float(value)):
        raise SweeplabError(f"{key}={value!r} must be a positive {kind}; e.g. {key}={example}")
    return value  # type: ignore[return-value]


def check_number(key: str, value: object, *, low: float = 0.0, example: str = "0.1") -> float:
    """Return value as a finite float >= low, else raise SweeplabError naming key and value.

    Args:
        key: the config key the value came from, e.g. ``train.weight_decay``.
        value: the raw value.
        low: the smallest value allowed.
        example: a valid value shown in the fix.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) < low:  # type: ignore[arg-type]
        raise SweeplabError(
            f"{key}={value!r} must be a finite number >= {low:g}; e.g. {key}={example}"
        )
    return float(value)  # type: ignore[arg-type]


# torch.Generator.manual_seed takes 64-bit seeds; digits derives split_seed + 1 from one.
SEED_RANGE = (-(2**63), 2**63 - 1)


def check_seed(key: str, value: object) -> int:
    """Return value if it is an integer seed torch's generators take, else raise SweeplabError."""
    low, high = SEED_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise SweeplabError(
            f"{key}={value!r} is not an integer in [-2**63, 2**63 - 1); use e.g. {key}=0"
        )
    return value


def warn(message: str) -> None:
    """Print one `sweeplab: warning:` line on stderr: the command goes on."""
    print(f"sweeplab: warning: {message}", file=sys.stderr, flush=True)


def check_new_path(path: str | Path, name: str, *, folder: bool = False) -> Path:
    """Raise SweeplabError unless `path` can be created, before a command does its work.

    Args:
        path: the file (or, with folder, the new folder) a command will write.
        name: how the user gave it, e.g. ``-o`` or ``OUT``.
        folder: the command creates path as a new folder (it must not exist yet).
    Returns:
        path as a Path.
    """
    target = Path(path)
    fix = "choose a new folder" if folder else "give a file name, e.g. -o report.html"
    if not str(path).strip():
        raise SweeplabError(f"{name} {path!r} is empty; {fix}")
    if folder and target.exists():
        raise SweeplabError(f"{name} {path} already exists; {fix} or delete it")
    if not folder and target.is_dir():
        raise SweeplabError(f"{name} {path} is a directory; {fix}")
    existing = next(p for p in [target.absolute().parent, *target.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise SweeplabError(f"{name} {path} cannot be created: {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SweeplabError(f"{name} {path} cannot be created: {existing} is not writable; {fix}")
    return target
