"""The Hydra task: compose, identify, skip finished runs, run the pipeline, write the row.

The only module (with cli.py) that sees DictConfig. torch and Lightning are imported only once
a run really has to execute, so re-running a finished sweep costs seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from pathlib import Path
from typing import Any, Literal

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sweeplab.configs import CONF
from sweeplab.engine import claims, interrupts, stacking, sweep_position, trainer_settings
from sweeplab.engine.provenance import git_sha, versions
from sweeplab.engine.signatures import supplied_arguments, target_name
from sweeplab.engine.task_guard import guarded
from sweeplab.errors import SweeplabError
from sweeplab.results import identity, objectives, store
from sweeplab.results.format import fraction, num
from sweeplab.results.row import ResultRow

CONF_DIR = str(CONF)


def _choice(group: str, default: str) -> str:
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get(group) or default
    return default


def _labels(cfg: DictConfig, rid: str, did: str) -> dict[str, Any]:
    return {
        "run_id": rid,
        "dense_id": did,
        "experiment": _choice("experiment", "adhoc"),
        "data": str(cfg.data.get("name", _choice("data", "?"))),
        "model": str(cfg.model.get("name") or target_name(cfg.model)),
        "strategy": str(cfg.pruning.get("name", _choice("pruning", "?"))),
        "scope": str(cfg.pruning.get("scope", "global")),
        "schedule": str(cfg.schedule.get("name", _choice("schedule", "?"))),
        "recovery": str(cfg.recovery.get("name", _choice("recovery", "?"))),
        "seed": cfg.seed,
        "sparsity_requested": identity.requested_sparsity(cfg.pruning),
    }


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising our own errors from constructors as they are."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, SweeplabError):
            raise e.__cause__ from None
        raise


def build_spec(cfg: DictConfig, rid: str, did: str):  # -> pipeline.RunSpec
    """Instantiate and check every part of the run; raises SweeplabError on bad input."""
    from sweeplab.engine.pipeline import RunSpec
    from sweeplab.engine.validate import NODES, check_config

    # Keys, types, trainer and paths, before anything is instantiated or loaded.
    config: dict = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    check_config(config, {g: _choice(g, "") for g in NODES})
    pruner = instantiate(cfg.pruning)
    schedule = instantiate(cfg.schedule)
    recovery = instantiate(cfg.recovery)
    from sweeplab.engine import compatibility, curves

    compatibility.check_combination(curves.attach(pruner, config, did), schedule, recovery)
    from sweeplab.engine.loggers import make_logger
    from sweeplab.engine.recipe import TrainConfig

    train = TrainConfig.of(config["train"], "train").check("train")
    finetune = TrainConfig.of(config["finetune"], "finetune").check(
        "finetune", allow_zero_epochs=True
    )
    trainer = cfg.trainer
    threads = trainer.get("threads")
    if threads is None and HydraConfig.initialized():
        from sweeplab.engine.resources import threads_per_worker

        # Parallel runs share the cores (a joblib worker gets cores // n_jobs, a submitit job
        # its cpus_per_task): runs that each use every core are slower than serial ones.
        threads = threads_per_worker(HydraConfig.get().launcher)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    logger_factory = instantiate(cfg.logger) if cfg.get("logger") else None
    return RunSpec(
        run_id=rid,
        dense_id=did,
        dense_sha256=identity.dense_digest(OmegaConf.to_container(cfg, resolve=True)),
        seed=int(cfg.seed),
        # Under hydra/launcher=stacked, jobs with equal data configs share one load.
        load_data=lambda: stacking.shared(repr(config["data"]), lambda: instantiate(cfg.data)),
        build_model=lambda shape, classes: instantiate(
            cfg.model,
            **supplied_arguments(config["model"], input_shape=list(shape), num_classes=classes),
        ),
        train=train,
        finetune=finetune,
        pruner=pruner,
        schedule=schedule,
        recovery=recovery,
        cache_dir=Path(cfg.paths.cache_dir),
        accelerator=str(trainer.accelerator),
        devices=int(trainer.devices),
        trainer=trainer_settings.TrainerSettings.of(config["trainer"]),
        run_sha256=identity.run_digest(config),
        logger=make_logger(logger_factory, rid, _labels(cfg, rid, did)),
        latency=bool(cfg.measure.latency),
        # Checked only when timed (validate.check_measure): too few samples give no spread.
        latency_repeats=int(cfg.measure.repeats) if cfg.measure.latency else 1,
        checkpoints=int(cfg.measure.checkpoints or 0),  # 0: off
        checkpoint_every=int(cfg.measure.checkpoint_every),
    )


def _note_in_manifest(rid: str) -> None:
    """Append rid to $SWEEPLAB_MANIFEST: `sweeplab reproduce` reads which runs its sweep had.

    Every job notes itself before it runs, skips or fails. One short appended line per job,
    so parallel workers sharing the file need no lock.
    """
    path = os.environ.get(store.MANIFEST_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{rid}\n")
            f.flush()


def execute(cfg: DictConfig) -> ResultRow | Literal["claimed"] | None:
    """Run one composed config; returns its row, None when it was already finished, or
    "claimed" when a live worker of another sweep is running it (engine/claims.py)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    rid, did = identity.run_id(resolved), identity.dense_id(resolved)
    results_dir = cfg.paths.results_dir
    labels = _labels(cfg, rid, did)
    _note_in_manifest(rid)
    store.remove_orphan_temps_once(results_dir, cfg.paths.cache_dir)  # of killed writers
    at = sweep_position.prefix()  # "[i/N] " in a sweep of sweeplab's sweeper
    skip = f"{at}skip {rid}: already finished ({store.row_path(results_dir, rid)})"
    if store.finished(results_dir, rid):
        print(skip, flush=True)
        return None
    with claims.claim(results_dir, rid) as claim:
        if not claim.ours:
            print(f"{at}claimed {rid}: running in {claim.holder} ({claim.path})", flush=True)
            return "claimed"
        if store.finished(results_dir, rid):  # by the worker whose claim ended just now
            print(skip, flush=True)
            return None
        return _execute(cfg, resolved, rid, did, labels)


def _execute(cfg: DictConfig, resolved: Any, rid: str, did: str, labels: Any) -> ResultRow:
    results_dir = cfg.paths.results_dir
    spec = build_spec(cfg, rid, did)

    import torch

    from sweeplab.engine import row_weights
    from sweeplab.engine.pipeline import run

    sweep_position.started()  # the sweep's ETA: a run's own time, not the one-off imports
    print(f"{sweep_position.prefix()}run  {rid}: {_describe(labels)}", flush=True)
    common = dict(
        **labels,
        config=resolved,
        threads=torch.get_num_threads(),  # as build_spec set them
        git_sha=git_sha(),
        versions=versions(),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    written: list[ResultRow] = []

    def write(dense: dict[str, Any], result: Any) -> None:
        # One row per result, on disk as soon as it exists. An iterative run's earlier rounds
        # get ids <run_id>-r<k>; its final result is the run's own row, the one `finished`
        # looks for, so a run killed mid-way is redone whole.
        core = dict(common)
        core["run_id"] = rid if result.final else f"{rid}-r{result.round}"
        if result.requested is not None:
            core["sparsity_requested"] = result.requested
        metrics = {**dense, **result.values}
        if result.weights is not None:  # saved beside the row: export needs no re-run
            sha = row_weights.save(results_dir, core["run_id"], result.weights)
            metrics[row_weights.DIGEST_KEY] = sha
        row = ResultRow(**core, round=result.round, seconds=result.seconds, metrics=metrics)
        path = store.write_row(results_dir, row)
        written.append(row)
        m = row.metrics
        print(
            f"done {row.run_id}: test acc dense {fraction(m.get('acc_dense_test'))} -> pruned "
            f"{fraction(m.get('acc_pruned_test'))} -> recovered "
            f"{fraction(m.get('acc_finetuned_test'))}, sparsity "
            f"{fraction(m.get('sparsity_achieved'))}, {num(m.get('compression'), '.1f')}x ({path})",
            flush=True,
        )

    spec.on_result = write
    try:
        run(spec)
    except SweeplabError:
        raise
    except Exception as e:
        if interrupts.caused_by_interrupt(e):
            # Ctrl-C that library code turned into another error (see sweeplab.engine.interrupts):
            # the user's interrupt, not the run's failure, so no failed row and no traceback.
            raise KeyboardInterrupt from None
        row = ResultRow(status="failed", error=f"{type(e).__name__}: {e}", **common)
        store.write_row(results_dir, row)
        traceback.print_exc()
        raise
    sweep_position.finished()
    row = written[-1]
    if spec.logger is not None:
        from sweeplab.engine.loggers import log_result

        log_result(spec.logger, row)
    return row


def _describe(labels: dict[str, Any]) -> str:
    keys = ("data", "model", "strategy", "sparsity_requested", "seed")
    return " ".join(f"{k}={labels[k]}" for k in keys)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> str | float | list[float]:
    """Hydra task: returns "ok" or "skipped" (the sweeper counts them), or a search's objectives.

    Under `hparams_search=...` (Hydra's Optuna sweeper) the config holds `search.objectives`;
    the task then returns those values of the run's row, read back from the file so that a
    skipped (already finished) trial reports the same values as when it ran.
    """
    return guarded(_task, cfg, "runs")


def _task(cfg: DictConfig) -> str | float | list[float]:
    from sweeplab.engine.validate import check_paths, resolved

    check_paths(resolved(cfg)["paths"])  # before any row is looked for or written
    search = cfg.get("search")
    if search:
        objectives.check_objectives(search.objectives)
    row = execute(cfg)
    if search:
        rid = identity.run_id(OmegaConf.to_container(cfg, resolve=True))
        if row == "claimed":
            raise SweeplabError(f"run {rid} is running in another sweep; no value for this trial")
        values = objectives.objectives(
            cfg.paths.results_dir, rid, search.objectives, float(search.max_drop)
        )
        return values[0] if len(values) == 1 else values  # Optuna: a float for one
    return "skipped" if row is None else "claimed" if row == "claimed" else "ok"


if __name__ == "__main__":
    main()
