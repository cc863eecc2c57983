"""The stacked launcher: each job in its own thread of this process, one at a time, their fits
trained together by engine/stacking.py's coordinator.

Every job runs through Hydra's run_job exactly as under the basic launcher (job folder, saved
config, the task's claim, skip and row), so rows, run ids and failures are the same; only the
fits differ in how they are computed. Hydra keeps its job config in one process-wide
singleton: a job gets its own back whenever its turn resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)
GIB = 1024**3


class StackedLauncher(Launcher):
    """Launches a batch of jobs in this process with their fits stacked.

    Args:
        max_variants: the most fits trained together in one stacked model.
        memory_gb: memory one stacked fit may use (None: a quarter of what is available).
    """

    def __init__(self, max_variants: int = 32, memory_gb: float | None = None) -> None:
        from sweeplab.errors import SweeplabError

        if int(max_variants) < 1:
            raise SweeplabError(
                f"hydra.launcher.max_variants={max_variants} must be at least 1, e.g. 32"
            )
        if memory_gb is not None and float(memory_gb) <= 0:
            raise SweeplabError(
                f"hydra.launcher.memory_gb={memory_gb} must be positive (GiB), or null"
            )
        self.max_variants = int(max_variants)
        self.memory_bytes = None if memory_gb is None else int(float(memory_gb) * GIB)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from sweeplab.engine import stack_jobs, stacking

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        coordinator = stacking.Coordinator(
            stack_jobs.train_group,
            stack_jobs.group_limit(self.max_variants, self.memory_bytes),
            keep=_keep_hydra_config,
        )
        workers = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            workers.append(coordinator.add(self._job(idx, list(overrides))))
        try:
            coordinator.run()
        finally:
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [w.result for w in workers]

    def _job(self, idx: int, overrides: list[str]) -> Any:
        def job() -> JobReturn:
            assert self.config is not None and self.hydra_context is not None
            assert self.task_function is not None
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, overrides
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            return run_job(
                hydra_context=self.hydra_context,
                task_function=self.task_function,
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )

        return job


def _keep_hydra_config() -> Any:
    """Hydra's current job config, and a function that puts it back."""
    saved = HydraConfig.instance().cfg

    def restore() -> None:
        HydraConfig.instance().cfg = saved

    return restore
