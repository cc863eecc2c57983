"""`sweeplab sensitivity`: the Hydra task of a sensitivity analysis (engine.sensitivity).

It composes the config exactly as `sweeplab run` does (same overrides, `-m` sweeps over seeds
or models), builds the run with engine.task.build_spec, and lets engine.pipeline.run train or
load the dense model with engine.sensitivity.Analysis as its schedule. Each (unit, rate) point
is one row, written at once: schedule "sensitivity", recovery "none", sparsity_requested the
rate, and a config whose schedule section names the layer and the rate, so its run id
(identity.run_id of that config) is deterministic and a re-run skips finished points. Rates:
`sensitivity.rates` (conf/config.yaml).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import hydra
from omegaconf import DictConfig, open_dict

from sweeplab.configs import CONF
from sweeplab.engine.provenance import git_sha, versions
from sweeplab.engine.task_guard import guarded
from sweeplab.errors import SweeplabError, check_fraction
from sweeplab.results import identity, store
from sweeplab.results.row import ResultRow
from sweeplab.results.sensitivity import SCHEDULE, analysis_digest, criterion_digest

# Pruning keys that choose amounts or layers of a whole run: not part of one point's config.
_RUN_AMOUNTS = ("distribution", "erk_power_scale", "exclude", "layer_scale", "layer_ratio")


def check_rates(section: Any) -> list[float]:
    """sensitivity.rates: a non-empty list of distinct rates in (0, 1), sorted."""
    rates = (section or {}).get("rates") if isinstance(section, dict) else None
    example = "sensitivity.rates=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95]"
    if not isinstance(rates, list) or not rates:
        raise SweeplabError(f"sensitivity.rates={rates!r} is not a list of rates; use {example}")
    checked = sorted({check_fraction("sensitivity.rates", r, example="0.5") for r in rates})
    if checked[0] == 0:
        raise SweeplabError(
            "sensitivity.rates holds 0, which prunes nothing (its drop is 0 by definition); "
            f"remove it, e.g. {example}"
        )
    return checked


class Book:
    """The rows of one analysis: each point's config and id, whether it is finished, writing.

    Args:
        config: the resolved config of the run (plain containers).
        labels: the run's row labels (engine.task._labels).
        structured: the criterion removes channels (its amount is pruning.ratio).
    """

    def __init__(self, config: dict[str, Any], labels: dict[str, Any], structured: bool) -> None:
        self.config, self.labels = config, labels
        self.results_dir = config["paths"]["results_dir"]
        self.amount = "ratio" if structured else "sparsity"
        self.criterion = criterion_digest(config["pruning"])
        self.analysis = analysis_digest(config)
        self.written = 0

    def point_config(self, layer: str, rate: float) -> dict[str, Any]:
        """The config a point's row records: the run's, for one layer at one rate."""
        config = copy.deepcopy(self.config)
        pruning = config["pruning"]
        for key in _RUN_AMOUNTS:
            if key in pruning:
                pruning[key] = None
        pruning[self.amount] = rate
        config["schedule"] = {"name": SCHEDULE, "layer": layer, "rate": rate}
        config["recovery"] = {"name": "none"}
        config["finetune"] = None  # nothing is retrained
        config["logger"] = None
        return config

    def row_id(self, layer: str, rate: float) -> str:
        return identity.run_id(self.point_config(layer, rate))

    def finished(self, unit: Any, rate: float) -> bool:
        return store.finished(self.results_dir, self.row_id(unit.name, rate))

    def write(self, point: Any) -> None:
        """Write one measured point (engine.sensitivity.Point) as an ok row."""
        import torch

        config = self.point_config(point.unit.name, point.rate)
        labels = {**self.labels, "schedule": SCHEDULE, "recovery": "none"}
        labels.update(run_id=identity.run_id(config), sparsity_requested=point.rate)
        metrics = {**point.values, "criterion": self.criterion, "analysis": self.analysis}
        row = ResultRow(
            **labels, metrics=metrics, seconds=point.seconds, config=config,
            threads=torch.get_num_threads(), git_sha=git_sha(), versions=versions(),
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )  # fmt: skip
        store.write_row(self.results_dir, row)
        self.written += 1


def analyse(cfg: DictConfig) -> str:
    """Run one composed config's analysis; returns "ok", or "skipped" when every point of it
    already has its row."""
    from sweeplab.engine.sensitivity import AllFinished, Analysis
    from sweeplab.engine.task import _labels, build_spec
    from sweeplab.engine.validate import check_paths, resolved

    config = resolved(cfg)
    check_paths(config["paths"])
    rates = check_rates(config.get("sensitivity"))
    results_dir = config["paths"]["results_dir"]
    did = identity.dense_id(config)
    store.remove_orphan_temps_once(results_dir, config["paths"]["cache_dir"])
    # The analysis prunes at its own rates and logs no fits: the run's amounts and logger go.
    with open_dict(cfg):
        for key in ("distribution", "erk_power_scale"):
            if key in cfg.pruning:
                cfg.pruning[key] = None
        cfg.logger = None
    spec = build_spec(cfg, f"sensitivity-{did}", did)
    labels = _labels(cfg, "", did)
    book = Book(config, labels, spec.pruner.produces == "model")
    analysis = Analysis(spec.pruner, rates, book.finished, book.write)
    spec.schedule = analysis
    from sweeplab.engine.pipeline import run

    start = dt.datetime.now()
    what = " ".join(f"{k}={labels[k]}" for k in ("data", "model", "strategy", "seed"))
    print(f"sensitivity of dense model {did}: {what}, rates {rates}", flush=True)
    try:
        run(spec)
    except AllFinished as e:
        print(f"skip sensitivity of {did}: every point finished ({e})", flush=True)
        return "skipped"
    seconds = (dt.datetime.now() - start).total_seconds()
    print(
        f"done sensitivity of {did}: {book.written} row(s) ({len(analysis.units)} units x "
        f"{len(rates)} rates, validation split) in {seconds:.1f} s ({analysis.seconds:.1f} s "
        f"measuring), in {results_dir}/runs; "
        "show them with sweeplab table --view sensitivity",
        flush=True,
    )
    return "ok"


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> str:
    """Hydra task: "ok" or "skipped" (the sweeper counts them); errors as engine.task.main."""
    return guarded(analyse, cfg, "points")
