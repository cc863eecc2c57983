"""Logger factories for `logger=` configs that need more than a constructor."""

from __future__ import annotations

import os
from typing import Any


def wandb_logger(name: str, project: str = "sweeplab", save_dir: str = ".", **kwargs: Any):
    """A Lightning WandbLogger; offline unless an API key is configured (env or ~/.netrc).

    Args:
        name: the W&B run name (sweeplab's run_id).
        project: W&B project.
        save_dir: folder for W&B's local files.
    Returns:
        pytorch_lightning.loggers.WandbLogger
    """
    from pathlib import Path

    from pytorch_lightning.loggers import WandbLogger

    netrc = Path.home() / ".netrc"
    logged_in = bool(os.environ.get("WANDB_API_KEY")) or (
        netrc.exists() and "api.wandb.ai" in netrc.read_text()
    )
    mode = os.environ.get("WANDB_MODE") or ("online" if logged_in else "offline")
    return WandbLogger(name=name, project=project, save_dir=save_dir, mode=mode, **kwargs)


def log_result(logger: Any, row: Any) -> None:
    """Send a finished run's row to its Lightning logger, then close the logger.

    Args:
        logger: the run's Lightning logger (CSVLogger, WandbLogger, ...).
        row: the run's ResultRow.
    """
    numbers = {
        k: float(v)
        for k, v in row.to_dict().items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logger.log_metrics({f"result/{k}": v for k, v in numbers.items()})
    logger.save()
    logger.finalize("success")
