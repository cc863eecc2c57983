"""`paper.before`: sweeps `sweeplab reproduce` runs before the experiment's own, in order.

The case they exist for: pruning.distribution=sensitivity reads the curves of `sweeplab
sensitivity` from the results folder, so a reproduction that allocates by them must measure
them first. A digits experiment with that sweep passes with its `before:` step (without it
the run is refused: tests/test_sensitivity.py); the block's checks refuse a bad step in one line.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import rows_in
from sweeplab.cli import main
from sweeplab.errors import SweeplabError
from sweeplab.reproduce.schema import check_paper
from sweeplab.results import store

SWEEP = {
    "defaults": [{"override /data": "digits"}, {"override /model": "mlp"}],
    "model": {"hidden": [16]},
    "train": {"epochs": 1},
    "pruning": {"sparsity": 0.8},
    "finetune": {"epochs": 0},
    "measure": {"latency": False},
    "sensitivity": {"rates": [0.5, 0.9]},
    "hydra": {"sweeper": {"params": {"pruning.distribution": "uniform,sensitivity", "seed": 0}}},
}
PAPER = {
    "citation": "Nobody 2024. A tiny check. Nowhere.",
    "table": "Table 0",
    "setting": "digits, mlp [16], sensitivity vs uniform",
    "tier": "cpu",
    "minutes": 0.5,
    "values": {
        "n": {"metric": "acc", "agg": "count"},
        "sens": {"metric": "acc", "where": {"config.pruning.distribution": "sensitivity"}},
    },
    "cells": [
        {
            "label": "runs",
            "paper": None,
            "ours": "n",
            "pass": "n == 3",
            "tolerance": "2 sweep runs + 1 before-step run; no curve row",
        },
        {
            "label": "sensitivity run",
            "paper": None,
            "ours": "sens",
            "pass": "0 <= sens <= 100",
            "tolerance": "plumbing",
        },
    ],  # fmt: skip
}
# The analysis of seed 0's dense model, then one run with pruning=random, then the sweep.
BEFORE = [
    ["sensitivity", "pruning.distribution=null"],
    ["run", "pruning=random", "pruning.distribution=null"],
]


def _write(folder: Path, name: str, paper: dict[str, Any]) -> None:
    text = "# @package _global_\n" + yaml.safe_dump({**SWEEP, "paper": paper}, sort_keys=False)
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    (folder / "experiment" / f"{name}.yaml").write_text(text)


# Four sweep processes (~18 s): in the slow tier with the real-data reproductions; the block's
# checks below run in the fast suite, and han2015_sensitivity_lenet5 ran the steps for real.
@pytest.mark.slow
def test_before_steps_run_first_and_their_runs_count(tmp_path: Path, capfd) -> None:
    conf, res = tmp_path / "conf", tmp_path / "res"
    _write(conf, "steps", {**PAPER, "before": BEFORE})
    overrides = [f"hydra.searchpath=[file://{conf}]", f"paths.results_dir={res}"]
    # (Without the analysis the sensitivity run is refused in one line before training:
    # tests/test_sensitivity.py checks that refusal.)
    assert main(["reproduce", "steps", *overrides]) == 0
    out, err = capfd.readouterr()
    analysis = out.index("before the sweep: sweeplab sensitivity pruning.distribution=null")
    lamp = out.index("before the sweep: sweeplab run pruning=random pruning.distribution=null")
    assert analysis < out.index("done sensitivity of") < lamp
    rows = [store.read_row(p) for p in rows_in(res)]
    assert sorted(r["layer"] for r in rows if r["schedule"] == "sensitivity") == sorted(
        ["net.1", "net.1", "net.3", "net.3"]
    )
    table = (res / "tables" / "steps.md").read_text()
    assert "| runs | - | 3 | `n == 3` |" in table and table.endswith("2/2 cells pass\n")
    strategies = sorted(r["strategy"] for r in rows if r["schedule"] != "sensitivity")
    assert strategies == ["global_magnitude", "global_magnitude", "random"]


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("sensitivity", r"paper\.before='sensitivity' must be a list of lists of strings"),
        ([[]], r"paper\.before=\[\[\]\] must be a list of lists of strings"),
        ([["sensitivity", 1]], r"must be a list of lists of strings"),
        ([["train", "seed=1"]], r"paper\.before\[0\]\[0\]='train' is no command a sweep runs"),
    ],
)
def test_bad_before_is_one_line_naming_the_key(before: Any, message: str) -> None:
    with pytest.raises(SweeplabError, match=message) as info:
        check_paper({**copy.deepcopy(PAPER), "before": before})
    assert "\n" not in str(info.value)
    assert check_paper({**PAPER, "before": BEFORE}).before == tuple(map(tuple, BEFORE))
    assert check_paper(PAPER).before == ()
