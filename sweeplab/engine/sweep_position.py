"""Where a job stands in its sweep: the `[i/N]` before a run's first line, and the sweep's ETA.

sweeplab's sweeper (hydra_plugins/sweeplab_sweeper) puts the sweep's job count N in the
environment before launching; a job is number i of N by its Hydra job number, under any
launcher (basic, joblib, submitit). Once a run of this process has executed, the prefix adds
an estimate for the rest of the sweep: the mean wall time of the runs this process executed
times the jobs left (this one included), shared by the launcher's parallel workers. Under
hydra/launcher=joblib each worker estimates from its own runs; a SLURM job runs one run per
process and shows [i/N] only. Runs found finished (skipped) count as full runs, so the estimate
of a resumed sweep is high. No torch import: task.py asks before a run imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

SIZE_ENV = "SWEEPLAB_SWEEP_SIZE"
_executed: list[float] = []  # wall seconds of the runs this process executed
_started: list[float] = []  # perf_counter when this process's current run started


def announce(size: int) -> None:
    """The sweeper, before launching: the sweep has `size` jobs (read by every job)."""
    os.environ[SIZE_ENV] = str(size)
    _executed.clear()


def withdraw() -> None:
    """The sweeper, when done: later runs in this process belong to no sweep."""
    os.environ.pop(SIZE_ENV, None)
    _executed.clear()


def started() -> None:
    """A run of this process starts (after its one-off imports: they are no run's cost)."""
    _started[:] = [time.perf_counter()]


def finished() -> None:
    """The run of this process that `started` last has finished."""
    if _started:
        _executed.append(time.perf_counter() - _started.pop())


def duration(seconds: float) -> str:
    """A short duration: "42 s", "3 min 05 s", "2 h 07 min"."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _workers(launcher: Mapping[str, Any] | None) -> int:
    """How many jobs run at once under this launcher (joblib's n_jobs; 1 otherwise)."""
    from sweeplab.engine.resources import _workers, cores

    if launcher and str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        n_jobs = launcher.get("n_jobs")
        return cores() if n_jobs is None else _workers(int(n_jobs), cores())
    return 1


def workers() -> int:
    """Jobs this job's launcher runs at once (1 outside Hydra): they share one terminal."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    return _workers(HydraConfig.get().get("launcher"))


def prefix() -> str:
    """This job's `position` in its sweep, or "" outside a sweep of sweeplab's sweeper."""
    size = os.environ.get(SIZE_ENV)
    from hydra.core.hydra_config import HydraConfig

    if not size or not HydraConfig.initialized():
        return ""
    hydra = HydraConfig.get()
    number = hydra.job.get("num")
    if number is None:
        return ""
    return position(int(number) + 1, int(size), _executed, _workers(hydra.get("launcher")))


def position(i: int, n: int, executed: list[float], workers: int = 1) -> str:
    """ "[i/N] ", with ", sweep ETA ..." once runs have executed.

    Args:
        i: this job's number, 1-based.
        n: jobs in the sweep.
        executed: wall seconds of the runs this process executed.
        workers: jobs the launcher runs at once.
    """
    text = f"[{i}/{n}"
    if executed:
        left = max(n - i + 1, 0)  # this job included
        eta = sum(executed) / len(executed) * left / max(workers, 1)
        text += f", sweep ETA {duration(eta)}"
    return text + "] "
