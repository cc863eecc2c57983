"""Measured CPU latency with its spread: interleaved timed samples, median and quartiles.

A latency figure is the median of `repeats` timed samples; its spread is the interquartile
range (25th to 75th percentile of the samples): robust to the odd descheduled sample that
would stretch a min/max range, and wide when the machine's load moves the timings. Models
compared with each other (dense and pruned) are sampled in turn, so drift in the machine's
load hits both alike, and a measured speedup is the median of the paired ratios.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sweeplab.engine.plain import example_input, plain_copy
from sweeplab.errors import SweeplabError, check_positive

# Timed samples per latency figure. Quartiles need a few samples on each side of them; at
# 15 the 25th and 75th percentiles sit between the 4th/5th and 11th/12th sorted samples.
REPEATS = 15
MIN_REPEATS = 5  # fewer samples give quartiles that are just neighbouring samples
BATCHES = (1, 64)  # batch sizes timed for every result


@dataclass(frozen=True)
class Latency:
    """Timed samples of one figure (ms per forward pass, or a ratio), with median and quartiles."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q25(self) -> float:
        return quartiles(self.samples)[0]

    @property
    def q75(self) -> float:
        return quartiles(self.samples)[2]


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles, interpolated linearly (numpy's default); one value
    is all three."""
    if len(values) == 1:
        return (values[0],) * 3
    q25, q50, q75 = statistics.quantiles(values, n=4, method="inclusive")
    return q25, q50, q75


def check_repeats(key: str, value: object) -> int:
    """value as a count of timed samples per figure; SweeplabError when too few for a spread."""
    n = int(check_positive(key, value, integer=True))
    if n < MIN_REPEATS:
        raise SweeplabError(
            f"{key}={n} is too few timed samples for a latency spread (quartiles); use "
            f"{key}={REPEATS} (at least {MIN_REPEATS}), or measure.latency=false"
        )
    return n


def timings(
    models: Sequence[nn.Module],
    input_shape: Sequence[int],
    batch_size: int = 1,
    repeats: int = REPEATS,
    warmup: int = 3,
    min_sample_ms: float = 5.0,
    threads: int | None = None,
) -> list[Latency]:
    """CPU wall time of one forward pass of a batch for each model, sampled in turn.

    Each model is copied to the CPU in eval mode with masks made permanent (the zeros stay;
    dense kernels do not skip them, which is the point) and run under torch.inference_mode.
    A sample times enough passes to last min_sample_ms, so timer resolution does not matter
    at batch 1. Samples alternate between the models, in reversed order every other round,
    so drift in the machine's load hits each model alike. The figures depend on
    torch.get_num_threads() and on other load on the machine.

    Args:
        models: the models to time (left untouched), all taking the same input.
        input_shape: shape of one example.
        batch_size: examples per forward pass.
        repeats: timed samples per model.
        warmup: untimed passes of each model first (allocator, oneDNN kernel choice).
        min_sample_ms: shortest duration of one sample, in ms.
        threads: torch intra-op threads while timing (restored after); None keeps the
            current setting. On a machine shared with other jobs, 1 thread gives stable
            figures: several threads then mostly measure waiting for descheduled peers.
    Returns:
        One Latency per model (ms per forward pass), in the order given.
    """
    if repeats < 1 or batch_size < 1:
        raise SweeplabError(
            f"latency needs repeats >= 1 and batch_size >= 1, got {repeats}, {batch_size}"
        )
    cpus = [plain_copy(m).cpu().eval() for m in models]
    x = example_input(cpus[0], input_shape, batch_size) if cpus else torch.empty(0)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _sample(cpus, x, repeats, warmup, min_sample_ms)
    finally:
        torch.set_num_threads(previous)


def _sample(
    models: list[nn.Module], x: Tensor, repeats: int, warmup: int, min_sample_ms: float
) -> list[Latency]:
    samples: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        inner = []
        for model in models:
            for _ in range(max(warmup, 1)):
                start = time.perf_counter()
                model(x)
            once = max(time.perf_counter() - start, 1e-6)
            inner.append(max(1, math.ceil(min_sample_ms / 1000 / once)))
        order = list(range(len(models)))
        for r in range(repeats):
            for i in order if r % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                for _ in range(inner[i]):
                    models[i](x)
                samples[i].append((time.perf_counter() - start) * 1000 / inner[i])
    return [Latency(tuple(s)) for s in samples]


def latency_ms(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    repeats: int = REPEATS,
    warmup: int = 3,
    min_sample_ms: float = 5.0,
    threads: int | None = None,
) -> float:
    """Median CPU milliseconds of one forward pass of a batch (see timings for the args)."""
    (t,) = timings([model], input_shape, batch_size, repeats, warmup, min_sample_ms, threads)
    return t.median


def _fields(prefix: str, t: Latency, unit: str = "_ms") -> dict[str, float]:
    return {
        f"{prefix}{unit}": t.median,
        f"{prefix}_q25{unit}": t.q25,
        f"{prefix}_q75{unit}": t.q75,
    }


def latency_fields(
    dense: nn.Module,
    pruned: nn.Module,
    input_shape: Sequence[int],
    repeats: int = REPEATS,
    threads: int | None = None,
) -> dict[str, float]:
    """Latency row fields of a pruned model against its dense model, sampled in turn.

    Args:
        dense: the dense model.
        pruned: the pruned model (masks, zeros, or fewer channels).
        input_shape: shape of one example.
        repeats: timed samples per figure.
        threads: torch threads while timing (see timings).
    Returns:
        latency_b{b}[_dense]_ms (median) with _q25_ms and _q75_ms (quartiles) for each batch
        size b in BATCHES, and speedup_measured (median of the paired batch-64 ratios dense /
        pruned) with speedup_measured_q25 and _q75.
    """
    out: dict[str, float] = {}
    pairs: dict[int, list[Latency]] = {}
    for b in BATCHES:
        pairs[b] = timings([dense, pruned], input_shape, b, repeats, threads=threads)
        out |= _fields(f"latency_b{b}_dense", pairs[b][0])
        out |= _fields(f"latency_b{b}", pairs[b][1])
    d, p = pairs[BATCHES[-1]]
    ratios = Latency(tuple(a / b for a, b in zip(d.samples, p.samples, strict=True)))
    out |= _fields("speedup_measured", ratios, unit="")
    return out
