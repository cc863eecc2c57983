"""TrainerSettings: the `trainer.` keys that reach Lightning or sweeplab's own training loop.

Checked here, before any work (validate.check_trainer calls `TrainerSettings.of`); each bad value
is one line naming the key, the value and the fix. Lightning refuses gradient clipping and
gradient accumulation under manual optimization, so those two are sweeplab's own
(engine/stepping.py); everything else is handed to `pl.Trainer` by `trainer_kwargs`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sweeplab.errors import SweeplabError, check_number, check_positive
from sweeplab.results.identity import max_time_seconds, precision_name

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
# Precisions Lightning knows that a run refuses, and why.
REFUSED_PRECISIONS = {
    "64-true": "keeps the weights in float64 after training",
    "16-true": "keeps the weights in float16 after training",
    "bf16-true": "keeps the weights in bfloat16 after training",
}
PROGRESS = ("auto", "bar", "lines", "off")
CLIP_ALGORITHMS = ("norm", "value")


@dataclass(frozen=True)
class TrainerSettings:
    """Lightning's and the training loop's settings of every fit of a run.

    Attributes:
        inner_steps: minibatches per Lightning batch (speed only: results are identical).
        precision: Lightning's precision; anything but "32-true" runs through its precision
            plugin (autocast, and a GradScaler for 16-mixed).
        deterministic: torch.use_deterministic_algorithms for the fit (None: leave as is).
        benchmark: torch.backends.cudnn.benchmark for the fit (None: Lightning's default).
        gradient_clip_val: clip gradients to this norm (or value) before each optimizer step.
        gradient_clip_algorithm: "norm" (total 2-norm) or "value" (each entry).
        accumulate_grad_batches: one optimizer step per this many minibatches (engine/stepping).
        num_sanity_val_steps: validation batches run before training (0: none, -1: all).
        max_time: stop a fit after this many seconds (checked once per Lightning batch).
        detect_anomaly: torch.autograd anomaly detection (slow; names the op that made a NaN).
        progress: "auto" (a bar on a terminal, else lines), "bar", "lines" or "off".
        progress_every: lines mode: seconds between two progress lines of one fit.
        checkpoint_minutes: partial checkpoints of long fits every epoch (None) or only once
            this many minutes passed since the last (engine/resume.py).
    """

    inner_steps: int = 8
    precision: str = "32-true"
    deterministic: bool | str | None = None
    benchmark: bool | None = None
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    accumulate_grad_batches: int = 1
    num_sanity_val_steps: int = 0
    max_time: float | None = None
    detect_anomaly: bool = False
    progress: str = "off"
    progress_every: float = 10.0
    checkpoint_minutes: float | None = None

    @property
    def fp32(self) -> bool:
        """Plain float32: the fast path (raw optimizer, loss.backward) applies."""
        return self.precision == "32-true"

    @classmethod
    def of(cls, trainer: Mapping[str, Any]) -> TrainerSettings:
        """The settings of a resolved `trainer` section; raises SweeplabError on a bad value."""
        accelerator = str(trainer.get("accelerator", "cpu"))
        kw: dict[str, Any] = {}
        if trainer.get("inner_steps") is not None:  # checked by validate.check_trainer
            kw["inner_steps"] = int(trainer["inner_steps"])
        if trainer.get("checkpoint_minutes") is not None:  # checked by validate.check_trainer
            kw["checkpoint_minutes"] = float(trainer["checkpoint_minutes"])
        if trainer.get("precision") is not None:
            kw["precision"] = _precision(trainer["precision"], accelerator)
        for key in ("deterministic", "benchmark", "detect_anomaly"):
            value = trainer.get(key)
            allowed = (True, False, "warn") if key == "deterministic" else (True, False)
            if value is not None and (value not in allowed or not isinstance(value, (bool, str))):
                shown = " or ".join(str(a).lower() for a in allowed)
                raise SweeplabError(
                    f"trainer.{key}={value!r} is not {shown}; use e.g. trainer.{key}=true "
                    "(or null for the default)"
                )
            if value is not None:
                kw[key] = value
        if trainer.get("gradient_clip_val") is not None:
            kw["gradient_clip_val"] = float(
                check_positive(
                    "trainer.gradient_clip_val", trainer["gradient_clip_val"], example="1.0"
                )
            )
        algorithm = trainer.get("gradient_clip_algorithm")
        if algorithm is not None:
            if algorithm not in CLIP_ALGORITHMS:
                raise SweeplabError(
                    f"trainer.gradient_clip_algorithm={algorithm!r} is not one of "
                    f"{list(CLIP_ALGORITHMS)}; use e.g. trainer.gradient_clip_algorithm=norm"
                )
            kw["gradient_clip_algorithm"] = algorithm
        if trainer.get("accumulate_grad_batches") is not None:
            kw["accumulate_grad_batches"] = check_positive(
                "trainer.accumulate_grad_batches",
                trainer["accumulate_grad_batches"],
                integer=True,
                example="2",
            )
        sanity = trainer.get("num_sanity_val_steps")
        if sanity is not None:
            if isinstance(sanity, bool) or not isinstance(sanity, int) or sanity < -1:
                raise SweeplabError(
                    f"trainer.num_sanity_val_steps={sanity!r} is not an integer >= -1; use "
                    "e.g. trainer.num_sanity_val_steps=2 (0: none, -1: every validation batch)"
                )
            kw["num_sanity_val_steps"] = sanity
        if trainer.get("max_time") is not None:
            kw["max_time"] = _max_time(trainer["max_time"])
        progress = trainer.get("progress")
        if progress is not None:
            if progress not in PROGRESS:
                raise SweeplabError(
                    f"trainer.progress={progress!r} is not one of {list(PROGRESS)}; use e.g. "
                    "trainer.progress=lines"
                )
            kw["progress"] = progress
        if trainer.get("progress_every") is not None:
            kw["progress_every"] = check_number(
                "trainer.progress_every", trainer["progress_every"], example="10"
            )
        return cls(**kw)

    def trainer_kwargs(self) -> dict[str, Any]:
        """What pl.Trainer takes of these settings (clipping and accumulation are the loop's)."""
        from datetime import timedelta

        kw: dict[str, Any] = {
            "precision": self.precision,
            "num_sanity_val_steps": self.num_sanity_val_steps,
            "detect_anomaly": self.detect_anomaly,
            "deterministic": self.deterministic,
            "benchmark": self.benchmark,
        }
        if self.max_time is not None:
            kw["max_time"] = timedelta(seconds=self.max_time)
        return kw


DEFAULTS = TrainerSettings()  # a library call's default: fp32, no clipping, no progress


def _precision(value: object, accelerator: str) -> str:
    name = precision_name(value)
    if name in REFUSED_PRECISIONS:
        raise SweeplabError(
            f"trainer.precision={value} {REFUSED_PRECISIONS[name]}, which pruning and "
            f"measurement do not support; use one of {list(PRECISIONS)}"
        )
    if name not in PRECISIONS:
        raise SweeplabError(
            f"trainer.precision={value!r} is not one of {list(PRECISIONS)}; use e.g. "
            "trainer.precision=bf16-mixed"
        )
    if name == "16-mixed" and accelerator == "cpu":
        # Lightning would quietly train in bf16-mixed instead: a row would record a precision
        # the run did not use.
        raise SweeplabError(
            f"trainer.precision={value} is not supported on CPU (Lightning would train in "
            "bf16-mixed instead); use trainer.precision=bf16-mixed or trainer=gpu"
        )
    return name


def _max_time(value: object) -> float:
    seconds = max_time_seconds(value)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise SweeplabError(
            f"trainer.max_time={value!r} is not a positive number of seconds or DD:HH:MM:SS; "
            "use e.g. trainer.max_time=3600 or trainer.max_time=00:01:00:00"
        )
    return seconds


@contextmanager
def torch_flags_kept() -> Iterator[None]:
    """Put back what Trainer(deterministic=..., benchmark=...) sets process-wide, so one run's
    setting does not leak into the next run of a sweep in the same process."""
    import os

    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas
