"""Logger factories for `logger=` configs, and what each logger gets once a run has finished.

W&B: one W&B run per sweeplab run, grouped by experiment (or by sweep), tagged with strategy,
schedule and recovery, the resolved config flattened, the result row in the summary and the
per-layer sparsity as a table. Offline unless an API key is configured; offline runs print
the `wandb sync` command that uploads them later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeplab.results.wandb import mark_logged, run_name, sync_hint, wandb_mode

# W&B refuses tags longer than this.
_TAG_MAX = 64


def _hydra_context() -> tuple[str | None, list[str]]:
    """(group, tags) from the Hydra job this factory runs in: experiment or sweep, choices."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None, []
        hc = HydraConfig.get()
        choices = hc.runtime.choices
        group = choices.get("experiment")
        if not group and hc.mode == RunMode.MULTIRUN:
            # One group per multirun: its sweep folder's name is the launch time.
            group = f"sweep-{Path(hc.runtime.output_dir).parent.name}"
        tags = [choices.get(g) for g in ("pruning", "schedule", "recovery")]
        return group, [t for t in tags if t]
    except Exception:  # outside a Hydra job (tests, notebooks): no context, no failure
        return None, []


def wandb_logger(
    name: str,
    title: str | None = None,
    project: str = "sweeplab",
    save_dir: str = ".",
    group: str | None = None,
    tags: list[str] | None = None,
    **kwargs: Any,
):
    """A Lightning WandbLogger for one run; offline unless an API key is configured.

    Args:
        name: sweeplab's run_id: the W&B run id.
        title: the W&B display name (run_name: `global_magnitude-s0.9-seed0`); default name.
        project: W&B project.
        save_dir: folder for W&B's local files (W&B adds wandb/ inside).
        group: W&B group (default: the experiment, else one group per multirun).
        tags: extra tags; strategy, schedule and recovery are added.
    Returns:
        pytorch_lightning.loggers.WandbLogger
    """
    from pytorch_lightning.loggers import WandbLogger

    hydra_group, hydra_tags = _hydra_context()
    all_tags = sorted({str(t)[:_TAG_MAX] for t in [*(tags or []), *hydra_tags]})
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        name=title or name,
        id=name,
        project=project,
        save_dir=save_dir,
        mode=wandb_mode(),
        group=group or hydra_group,
        tags=all_tags,
        **kwargs,
    )


def make_logger(factory: Any, run_id: str, labels: dict[str, Any]) -> Any:
    """The run's Lightning logger from a `logger=` factory (a functools.partial), or None;
    W&B gets the run id as its id and a readable name."""
    if factory is None:
        return None
    if getattr(factory, "func", None) is wandb_logger:
        return factory(name=run_id, title=run_name(labels))
    return factory(name=run_id)


def _is_wandb(logger: Any) -> bool:
    # Duck-typed so a CSV-only run never imports wandb.
    return type(logger).__name__ == "WandbLogger" and hasattr(logger, "experiment")


def _wandb_result(logger: Any, row: Any) -> None:
    import wandb

    from sweeplab.results.rows import flatten_config

    run = logger.experiment
    data = row.to_dict()  # flat: core fields and metrics side by side
    config = data.pop("config") or {}
    run.config.update(
        {k: v for k, v in flatten_config(config).items() if k != "logger"},
        allow_val_change=True,
    )
    tags = {str(t)[:_TAG_MAX] for t in (row.strategy, row.schedule, row.recovery) if t}
    run.tags = tuple(sorted(set(run.tags or ()) | tags))
    run.summary.update(data)
    layer_sparsity = row.metrics.get("layer_sparsity") or {}
    layers = wandb.Table(
        columns=["layer", "sparsity"], data=[[k, v] for k, v in layer_sparsity.items()]
    )
    run.log(
        {
            # Not "layer_sparsity": the summary holds the row's dict under that name.
            "layer_sparsity_table": layers,
            "layer_sparsity_chart": wandb.plot.bar(
                layers, "layer", "sparsity", title=f"per-layer sparsity of {row.run_id}"
            ),
        }
    )


def log_result(logger: Any, row: Any) -> None:
    """Send a finished run's row to its Lightning logger, then close the logger.

    Args:
        logger: the run's Lightning logger (CSVLogger, WandbLogger, ...).
        row: the run's ResultRow; its numeric fields and metrics are logged as result/<name>.
    """
    numbers = {
        k: float(v)
        for k, v in row.to_dict().items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logger.log_metrics({f"result/{k}": v for k, v in numbers.items()})
    wandb_run = logger.experiment if _is_wandb(logger) else None
    if wandb_run is not None:
        _wandb_result(logger, row)
    logger.save()
    logger.finalize("success")
    if wandb_run is not None:
        hint = sync_hint(wandb_run)
        # Each run is its own W&B run: finish it so the next job in this process starts anew.
        wandb_run.finish()
        results_dir = (row.config.get("paths") or {}).get("results_dir")
        if results_dir:  # a backfill (`sweeplab wandb-log`) then skips this row
            mark_logged(results_dir, wandb_run.project, row.run_id)
        if hint:
            print(f"wandb: offline run saved; upload it with: {hint}", flush=True)
