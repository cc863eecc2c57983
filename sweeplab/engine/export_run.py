"""`sweeplab export RUN_ID OUT`: a finished row's pruned model, written by sweeplab.engine.export.

Every row keeps its model's weights beside it (engine.row_weights), so export builds the
architecture from the row's config, loads those weights (sha256-checked against the row),
measures their test accuracy here against the row's, and writes the folder: no training.
`rebuild=True` instead runs the row's config once more (the dense model comes from the cache)
and checks the accuracy matches: for rows written before weights were kept.

A row is data: its `_target_`s are checked (sweeplab.engine.row_targets) before anything is
imported or built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.engine.row_targets import check_row_targets, parse_trusted
from sweeplab.errors import SweeplabError, check_new_path, warn
from sweeplab.results import identity, store

if TYPE_CHECKING:
    from torch import nn

    from sweeplab.data.base import Splits


@dataclass
class Exported:
    """What an export wrote and what it measured."""

    path: Path
    source: str  # "saved weights" or "rebuilt"
    acc_test: float  # test accuracy of the exported model, measured during the export
    acc_row: float  # what the row records


@dataclass
class _Row:
    values: dict[str, Any]  # the flat row
    path: Path  # its file
    config: dict[str, Any]  # its config, today's target names
    run: str  # the run's own id (a round row's run)


def _checked_row(results_dir: str | Path, row_id: str, trusted: Mapping[str, str]) -> _Row:
    """The row of row_id, once its status, ids and every `_target_` in it are checked."""
    path = store.row_path(results_dir, row_id)
    if not path.exists():
        raise SweeplabError(f"no row {path}; pass a run_id from `sweeplab table --view points`")
    row = store.read_row(path)  # flat: metrics beside the core, for any schema version
    if row.get("schedule") == "sensitivity":  # engine.sensitivity: no model is kept
        raise SweeplabError(
            f"run {row_id} is a sensitivity row (layer {row.get('layer')} pruned alone at "
            f"{row.get('rate')}, no model kept); export a run of sweeplab run instead"
        )
    config = identity.current_targets(row.get("config"))
    if not isinstance(config, dict):
        raise SweeplabError(f"{path} has no config mapping; run the sweep again to rewrite it")
    config.pop("logger", None)  # never built: the re-run logs nothing
    check_row_targets(config, path, trusted)
    if row.get("status") != "ok" or row.get("run_id") != row_id:
        raise SweeplabError(f"run {row_id} did not finish ok ({row.get('error')}); re-run it first")
    run, did = identity.run_id(config), identity.dense_id(config)
    # An earlier round of an iterative run has the id <run>-r<round>.
    if row_id not in (run, f"{run}-r{row.get('round')}") or did != row.get("dense_id"):
        raise SweeplabError(
            f"{path} has run_id={row_id} dense_id={row.get('dense_id')} but its config gives "
            f"{run} and {did}; the row was edited: delete it and run the sweep again"
        )
    return _Row(row, path, config, run)


def _config(row: _Row) -> DictConfig:
    cfg = OmegaConf.create(row.config)
    cfg.logger = None
    cfg.measure.latency = False
    return cfg


def _from_saved(results_dir: str | Path, row: _Row, row_id: str) -> tuple[nn.Module, Splits, bool]:
    """The row's model, built from its config and loaded with its saved weights; its data;
    whether structured pruning made it smaller."""
    import torch

    from sweeplab.engine import row_weights
    from sweeplab.engine.reshape import shape_like
    from sweeplab.engine.signatures import supplied_arguments
    from sweeplab.engine.task import instantiate

    digest = row.values.get(row_weights.DIGEST_KEY)
    if not isinstance(digest, str):
        raise SweeplabError(
            f"row {row_id} was written before runs kept their weights (no "
            f"{row_weights.weights_path(results_dir, row_id)}); export it with --rebuild, "
            "which re-runs prune and recovery"
        )
    state, structured = row_weights.load(results_dir, row_id, digest)
    cfg = _config(row)
    splits = instantiate(cfg.data)
    shape, classes = list(splits.input_shape), splits.num_classes
    model = instantiate(
        cfg.model, **supplied_arguments(row.config["model"], input_shape=shape, num_classes=classes)
    )
    if structured:
        with torch.no_grad():
            shape_like(model, state, splits.test_x[:1])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        problem = str(e).replace("\n", " ").replace("\t", "")
        raise SweeplabError(
            f"the saved weights of {row_id} do not fit its model ({problem[:300]}); "
            "export it with --rebuild"
        ) from None
    return model, splits, structured


def _rebuilt(row: _Row, row_id: str) -> tuple[nn.Module, Splits, bool]:
    """The row's model, made again by running its config (prune and recovery); as _from_saved."""
    from sweeplab.engine.pipeline import run
    from sweeplab.engine.task import build_spec

    if row_id != row.run:
        raise SweeplabError(
            f"{row_id} is round {row.values.get('round')} of run {row.run}; --rebuild re-runs "
            f"whole runs: export {row.run} --rebuild, or {row_id} without --rebuild"
        )
    job = run(build_spec(_config(row), row.run, row.values["dense_id"]))
    again, recorded = job.results[-1].values["acc_finetuned_test"], row.values["acc_finetuned_test"]
    if again != recorded:
        raise SweeplabError(
            f"re-running {row_id} gave test accuracy {again}, its row says {recorded}: the run "
            "is not reproducible on this machine (other hardware or package versions); "
            "nothing exported"
        )
    return job.model, job.splits, job.structured


def export_run(
    results_dir: str | Path,
    run_id: str,
    out: str | Path,
    trusted: Mapping[str, str] | None = None,
    rebuild: bool = False,
) -> Exported:
    """Export the pruned model of row `run_id` to the new folder `out`.

    Args:
        results_dir: the results dir holding runs/<run_id>.json.
        run_id: a finished row's id (an iterative run's earlier round too: `<id>-r<k>`).
        out: folder to create.
        trusted: {KEY._target_: CLASS} the user names as their own code (e.g. their model),
            allowed at that key besides the project's classes.
        rebuild: run the row's config again instead of loading its saved weights.
    Returns:
        What was exported, with the test accuracy measured here and the row's.
    """
    import torch

    from sweeplab.engine.export import ModelCard, export_model
    from sweeplab.engine.measure import accuracy

    row = _checked_row(results_dir, run_id, trusted or {})
    if Path(out).exists():
        raise SweeplabError(f"export path {out} already exists; choose a new path or delete it")
    if rebuild:
        model, splits, structured = _rebuilt(row, run_id)
    else:
        model, splits, structured = _from_saved(results_dir, row, run_id)
    model, splits = model.cpu().eval(), splits.to("cpu")
    with torch.inference_mode():
        acc = accuracy(model, splits.test_x, splits.test_y)
    card = ModelCard.of(row.values, splits, acc)
    path = export_model(model, splits.test_x[:1], out, sparse=not structured, card=card)
    source = "rebuilt" if rebuild else "saved weights"
    return Exported(path, source, acc, float(row.values["acc_finetuned_test"]))


def export_command(
    results_dir: str, run_id: str, out: str, trusted: list[str], rebuild: bool
) -> int:
    """`sweeplab export`: check OUT, export, say what was exported and its test accuracy.

    Args:
        trusted: the command line's KEY._target_=CLASS arguments.
    Returns:
        0 (errors raise SweeplabError).
    """
    check_new_path(out, "OUT", folder=True)  # before a run is rebuilt, not after
    done = export_run(results_dir, run_id, out, parse_trusted(trusted), rebuild)
    same = done.acc_test == done.acc_row
    print(
        f"exported {run_id} ({done.source}) to {done.path}: test accuracy {done.acc_test:.4f} "
        f"({'as its row records' if same else f'row: {done.acc_row:.4f}'}); load it as "
        f"{done.path / 'README.txt'} shows"
    )
    if not same:
        warn(
            f"{run_id}'s saved weights score {done.acc_test} on its test split here, its row "
            f"records {done.acc_row} (trained on other hardware, or data.root holds other data)"
        )
    return 0
