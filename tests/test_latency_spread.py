"""Latency carries its spread: measured as interleaved samples with quartiles, shown in tables,
and a latency front that no difference inside the spread can decide."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import REPO
from sweeplab.engine import costs, latency
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP
from sweeplab.pruning.masks import apply_masks
from sweeplab.results import identity, store
from sweeplab.results.analysis import summarize
from sweeplab.results.pareto import interval_front, pareto_front
from sweeplab.results.render import render
from sweeplab.results.row import ResultRow
from sweeplab.results.rows import load_rows

DIGITS = (1, 8, 8)


# --- measurement ------------------------------------------------------------------------------


def test_default_repeats_give_a_spread() -> None:
    assert latency.REPEATS >= 15 and latency.MIN_REPEATS >= 5
    conf = OmegaConf.load(REPO / "conf" / "config.yaml")
    assert conf.measure.repeats >= latency.REPEATS
    with pytest.raises(SweeplabError, match=r"measure.repeats=2 .*measure.repeats=15"):
        latency.check_repeats("measure.repeats", 2)
    assert latency.check_repeats("measure.repeats", 15) == 15


def test_cost_fields_record_quartiles_of_every_latency_figure() -> None:
    dense = MLP(DIGITS, 10, hidden=[32])
    pruned = MLP(DIGITS, 10, hidden=[32])
    apply_masks(pruned, {"net.1.weight": (torch.rand(32, 64) < 0.1).float()})
    fields = costs.cost_fields(dense, pruned, DIGITS, threads=1)
    figures = [f"latency_b{b}{d}" for b in (1, 64) for d in ("", "_dense")]
    for f in figures:
        lo, mid, hi = (fields[f"{f}{q}_ms"] for q in ("_q25", "", "_q75"))
        assert 0 < lo <= mid <= hi, f
    lo, mid, hi = (fields[f"speedup_measured{q}"] for q in ("_q25", "", "_q75"))
    assert 0 < lo <= mid <= hi


def test_timings_interleave_the_models_and_keep_every_sample() -> None:
    calls: list[str] = []

    class Tagged(nn.Module):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag
            self.lin = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(self.tag)
            return self.lin(x)

    # timings copies the models; the copies append to the same list.
    out = latency.timings([Tagged("d"), Tagged("p")], (4,), repeats=6, warmup=1, min_sample_ms=0)
    assert [len(t.samples) for t in out] == [6, 6]
    timed = calls[2:]  # after one warmup pass each
    assert timed == ["d", "p", "p", "d"] * 3  # in turn, reversed every other round
    t = latency.Latency((4.0, 1.0, 3.0, 2.0, 5.0))
    assert (t.q25, t.median, t.q75) == (2.0, 3.0, 4.0)
    assert latency.Latency((7.0,)).q25 == latency.Latency((7.0,)).q75 == 7.0


# --- fronts -----------------------------------------------------------------------------------


def test_interval_front_ignores_differences_inside_the_spread() -> None:
    # Overlapping intervals tie on cost: equal accuracy keeps both; higher accuracy wins.
    assert interval_front([0.4, 0.45], [1.8, 2.0], [0.9, 0.9]).tolist() == [True, True]
    assert interval_front([0.4, 0.45], [1.8, 2.0], [0.9, 0.91]).tolist() == [False, True]
    # Separated intervals: the cheaper, less accurate point is on the front too.
    assert interval_front([0.1, 0.9], [0.2, 1.1], [0.8, 0.9]).tolist() == [True, True]
    assert interval_front([0.1, 0.9], [0.2, 1.1], [0.9, 0.8]).tolist() == [True, False]
    # Zero-width intervals: the exact front.
    cost, gain = [10, 5, 5, 1, 7], [0.9, 0.8, 0.7, 0.5, 0.6]
    assert interval_front(cost, cost, gain).tolist() == pareto_front(cost, gain).tolist()


def _row(name: str, nonzero: int, acc: float, lat: tuple[float, ...], speedup: tuple[float, ...],
         dense_lat: tuple[float, ...] = (1.0, 0.5, 1.9), seed: int = 0) -> ResultRow:  # fmt: skip
    """An unstructured MLP row; lat = (median, q25, q75) in ms (median alone: an old row)."""
    config = {
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [128, 64]},
        "pruning": {"name": name, "sparsity": 1 - nonzero / 10_000, "scope": "global"},
        "seed": seed,
    }
    metrics = dict(
        sparsity_achieved=1 - nonzero / 10_000, params_total=10_000, params_nonzero=nonzero,
        compression=10_000 / nonzero, acc_dense_test=0.95, acc_finetuned_test=acc,
        flops_dense=2e4, flops=2.0 * nonzero,
        latency_b1_dense_ms=dense_lat[0], latency_b1_ms=lat[0], speedup_measured=speedup[0],
    )  # fmt: skip
    if len(lat) == 3:
        metrics |= dict(
            latency_b1_dense_q25_ms=dense_lat[1], latency_b1_dense_q75_ms=dense_lat[2],
            latency_b1_q25_ms=lat[1], latency_b1_q75_ms=lat[2],
            speedup_measured_q25=speedup[1], speedup_measured_q75=speedup[2],
        )  # fmt: skip
    return ResultRow(
        run_id=identity.run_id(config), dense_id=identity.dense_id(config), experiment="t",
        data="digits", model="mlp", strategy=name, scope="global", schedule="oneshot",
        recovery="finetune", seed=seed, sparsity_requested=1 - nonzero / 10_000, metrics=metrics,
        config=config,
    )  # fmt: skip


def _summary(tmp_path: Path, rows: list[ResultRow]) -> pd.DataFrame:
    for row in rows:
        store.write_row(tmp_path, row)
    return summarize(load_rows(tmp_path))


def _flags(points: pd.DataFrame, flag: str) -> dict[str, bool]:
    return dict(zip(points["series"], points[flag].astype(bool), strict=True))


def test_noisy_speedups_get_no_latency_front(tmp_path: Path) -> None:
    # Unstructured pruning: 2.26x and 0.54x measured, both inside the dense model's spread.
    fast = _row("magnitude", 1_000, 0.94, (0.442, 0.40, 1.80), (2.26, 0.50, 2.40))
    slow = _row("random", 2_000, 0.945, (1.85, 0.45, 2.00), (0.54, 0.48, 2.30))
    summary = _summary(tmp_path, [fast, slow])
    flags = _flags(summary.points, "pareto_latency")
    assert flags == {"dense": True, "magnitude": False, "random": False}
    # Exact counts keep their fronts: the params front sees each strategy's own size.
    assert _flags(summary.points, "pareto") == {"dense": True, "magnitude": True, "random": True}


def test_separated_latency_is_still_a_front(tmp_path: Path) -> None:
    fast = _row("l1_filter", 3_000, 0.90, (0.20, 0.18, 0.22), (4.9, 4.5, 5.3), (1.0, 0.9, 1.1))
    noisy = _row("random", 2_000, 0.945, (0.85, 0.45, 2.00), (1.1, 0.5, 2.3), (1.0, 0.9, 1.1))
    summary = _summary(tmp_path, [fast, noisy])
    flags = _flags(summary.points, "pareto_latency")
    assert flags == {"dense": True, "l1_filter": True, "random": False}
    pts = summary.points.set_index("series")
    assert (pts.loc["l1_filter", "latency_lo"], pts.loc["l1_filter", "latency_hi"]) == (0.18, 0.22)
    assert (pts.loc["dense", "latency_lo"], pts.loc["dense", "latency_hi"]) == (0.9, 1.1)


# --- tables and old rows ------------------------------------------------------------------------


def _cells(text: str, series: str) -> dict[str, str]:
    lines = [x for x in text.splitlines() if x.startswith("| ")]
    header = [c.strip() for c in lines[0].split("|")[1:-1]]
    line = next(x for x in lines if x.startswith(f"| {series} "))
    return dict(zip(header, (c.strip() for c in line.split("|")[1:-1]), strict=True))


def test_points_table_shows_the_spread(tmp_path: Path) -> None:
    fast = _row("magnitude", 1_000, 0.94, (0.442, 0.40, 1.80), (2.26, 0.50, 2.40))
    text = render(_summary(tmp_path, [fast]), "md", "points")
    cells = _cells(text, "magnitude")
    assert cells["latency b1 ms [q25, q75]"] == "0.442 [0.4, 1.8]"
    assert cells["measured speedup [q25, q75]"] == "2.26x [0.50, 2.40]"
    assert _cells(text, "dense")["latency b1 ms [q25, q75]"] == "1 [0.5, 1.9]"
    assert "25th and 75th percentiles" in text
    csv = pd.read_csv(io.StringIO(render(_summary(tmp_path, [fast]), "csv", "points")))
    assert {"latency_lo", "latency_hi", "speedup_measured_lo", "speedup_measured_hi"} <= set(
        csv.columns
    )


def test_old_rows_without_spread_load_render_and_mark_no_latency_front(tmp_path: Path) -> None:
    old = _row("magnitude", 1_000, 0.94, (0.442,), (2.26,), (1.0,))
    summary = _summary(tmp_path, [old])
    pts = summary.points
    assert "latency" in summary.costs and not pts["pareto_latency"].any()
    assert pts["latency_lo"].isna().all() and pts["speedup_measured_hi"].isna().all()
    assert pts["pareto"].all()  # the exact fronts are unaffected
    cells = _cells(render(summary, "md", "points"), "magnitude")
    assert cells["latency b1 ms [q25, q75]"] == "0.442"
    assert cells["measured speedup [q25, q75]"] == "2.26x"
    # A point that pools an old row with a new one has an unknown spread too.
    new = _row("magnitude", 1_000, 0.94, (0.40, 0.39, 0.41), (2.4, 2.3, 2.5), (1.0, 0.9, 1.1), 1)
    mixed = _summary(tmp_path / "mixed", [old, new])
    pruned = mixed.points[mixed.points["series"] == "magnitude"]
    assert list(pruned["n"]) == [2]
    assert np.isnan(pruned["latency_lo"]).all() and not pruned["pareto_latency"].any()
