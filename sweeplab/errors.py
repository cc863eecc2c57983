"""User-facing errors: each names the bad value and the fix, and ends the run with no row."""

from __future__ import annotations

import math


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


def check_positive(key: str, value: object, *, integer: bool = False) -> float:
    """Return value if it is a positive number (an integer when asked), else raise SweeplabError."""
    kind = "integer" if integer else "number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not value > 0 or math.isinf(float(value)):
        raise SweeplabError(f"{key}={value!r} must be a positive {kind}; e.g. {key}=10")
    return value  # type: ignore[return-value]
