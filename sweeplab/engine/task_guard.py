"""How a Hydra task of sweeplab ends: bad input in one line (exit 2), Ctrl-C exit 130.

Shared by `sweeplab run` (engine/task.py) and `sweeplab sensitivity` (engine/sensitivity_task.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeplab.engine import interrupts
from sweeplab.errors import SweeplabError


def _multirun() -> bool:
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def guarded(task: Callable[[DictConfig], Any], cfg: DictConfig, kept: str) -> Any:
    """task(cfg) as a Hydra task: bad input is one line (exit 2), Ctrl-C exit 130.

    Args:
        task: the task body.
        cfg: the composed config.
        kept: what an interrupted command keeps ("runs", "points"), for its message.
    """
    with interrupts.task():
        try:
            return task(cfg)
        except SweeplabError as e:
            # One line, no traceback, no row: the input was wrong, not the run.
            print(f"sweeplab: error: {e}", file=sys.stderr, flush=True)
            if _multirun():
                raise  # the sweeper records it, runs the other jobs, exits non-zero at the end
            sys.exit(2)
        except BaseException as e:
            if not interrupts.caused_by_interrupt(e):
                raise
            # Ctrl-C is the user's, not the run's fault: no failed row (execute writes none
            # for an interrupt), temp files are removed by the writers, and 130 is the shell's
            # code for SIGINT.
            if _multirun():
                raise KeyboardInterrupt from None  # the sweeper stops and says what is kept
            print(
                f"sweeplab: interrupted; finished {kept} are kept, run the same command to resume",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(130)
