"""How many CPU threads one run may use, given how many runs share the machine (its launcher).

No torch import here: engine/task.py asks before it sets torch's thread count.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity API
        return os.cpu_count() or 1


def _workers(n_jobs: int, available: int) -> int:
    """joblib's meaning of n_jobs: -1 is every core, -2 all but one, and so on."""
    if n_jobs < 0:
        return max(available + 1 + n_jobs, 1)
    return max(n_jobs, 1)


def threads_per_worker(
    launcher: Mapping[str, Any] | None, available: int | None = None
) -> int | None:
    """Torch intra-op threads for one run under the given Hydra launcher config.

    Parallel runs that each use every core oversubscribe the CPU and run slower than serial, so
    a joblib worker gets cores // n_jobs threads and a submitit job its cpus_per_task.

    Args:
        launcher: the resolved `hydra.launcher` config (None outside Hydra).
        available: cores to share; default: this process's cores.
    Returns:
        A thread count, or None to keep torch's default (a single process per machine).
    """
    if not launcher:
        return None
    available = available or cores()
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        n_jobs = launcher.get("n_jobs")
        workers = available if n_jobs is None else _workers(int(n_jobs), available)
        return max(available // workers, 1)
    if "hydra_submitit_launcher" in target:
        cpus = launcher.get("cpus_per_task")
        # A SLURM job sees the whole node through os.cpu_count(); torch would use every core.
        return int(cpus) if cpus else None
    return None
