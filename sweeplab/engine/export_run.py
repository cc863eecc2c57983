"""`sweeplab export RUN_ID OUT`: rebuild a finished run's pruned model and export it.

Rows keep results, not models. A CPU run is bitwise repeatable (tests/test_sweep.py), and the
dense model comes from the cache, so the model is rebuilt by running the row's own config once
more, checked against the row, and then written by sweeplab.engine.export. A row is data: its
`_target_`s are checked (sweeplab.engine.row_targets) before anything is imported or built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from sweeplab.engine.row_targets import check_row_targets
from sweeplab.errors import SweeplabError
from sweeplab.results import identity, store


def export_run(
    results_dir: str | Path,
    run_id: str,
    out: str | Path,
    trusted: Mapping[str, str] | None = None,
) -> Path:
    """Re-run `run_id` from its row's config and export the pruned model to `out`.

    Args:
        results_dir: the results dir holding runs/<run_id>.json.
        run_id: a finished run's id (its final row; not an earlier round's).
        out: folder to create.
        trusted: {KEY._target_: CLASS} the user names as their own code (e.g. their model),
            allowed at that key besides the project's classes.
    Returns:
        The export folder.
    """
    from sweeplab.engine.export import export_model
    from sweeplab.engine.pipeline import run
    from sweeplab.engine.task import build_spec

    path = store.row_path(results_dir, run_id)
    if not path.exists():
        raise SweeplabError(f"no row {path}; pass a run_id from `sweeplab table --view points`")
    row = store.read_row(path)  # flat: metrics beside the core, for any schema version
    config = identity.current_targets(row.get("config"))
    if not isinstance(config, dict):
        raise SweeplabError(f"{path} has no config mapping; run the sweep again to rewrite it")
    config.pop("logger", None)  # never built: the re-run logs nothing
    check_row_targets(config, path, trusted or {})
    if row.get("status") != "ok" or row.get("run_id") != run_id:
        raise SweeplabError(f"run {run_id} did not finish ok ({row.get('error')}); re-run it first")
    ids = (identity.run_id(config), identity.dense_id(config))
    if ids != (run_id, row.get("dense_id")):
        raise SweeplabError(
            f"{path} has run_id={run_id} dense_id={row.get('dense_id')} but its config gives "
            f"{ids[0]} and {ids[1]}; the row was edited: delete it and run the sweep again"
        )
    if Path(out).exists():
        raise SweeplabError(f"export path {out} already exists; choose a new path or delete it")
    cfg = OmegaConf.create(config)
    cfg.logger = None
    cfg.measure.latency = False
    spec = build_spec(cfg, run_id, row["dense_id"])
    job = run(spec)
    again = job.results[-1].values["acc_finetuned_test"]
    if again != row["acc_finetuned_test"]:
        raise SweeplabError(
            f"re-running {run_id} gave test accuracy {again}, its row says "
            f"{row['acc_finetuned_test']}: the run is not reproducible on this machine "
            "(other hardware or package versions); nothing exported"
        )
    return export_model(job.model, job.splits.train_x[:2], out, sparse=not job.structured)
