"""Tables of a results folder that mixes experiments: two strategies (one structured, at two
ratios), two schedules (oneshot and iterative), two recoveries, two seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeplab.cli import main
from sweeplab.results import identity, store
from sweeplab.results.analysis import pivot_cells, summarize
from sweeplab.results.render import render
from sweeplab.results.row import ResultRow
from sweeplab.results.rows import load_rows

DENSE = 100_000  # parameters of the dense LeNet-5
_SCHEDULES = {
    "oneshot": {"_target_": "sweeplab.engine.schedules.OneShot", "name": "oneshot"},
    "iterative": {"_target_": "sweeplab.engine.schedules.Iterative", "name": "iterative",
                  "rounds": 2},
}  # fmt: skip
_RECOVERIES = {
    "finetune": {"_target_": "sweeplab.engine.recovery.Finetune", "name": "finetune"},
    "lr_rewind": {"_target_": "sweeplab.engine.recovery.LrRewind", "name": "lr_rewind"},
}


def mixed_row(
    strategy: str, level: float, seed: int, *, schedule: str = "oneshot",
    recovery: str = "finetune", round_: int | None = None, requested: float | None = None,
) -> ResultRow:  # fmt: skip
    """A row as a run writes it: l1_filter removes channels (a smaller model, ratio), the
    other strategy masks weights (sparsity). level: the run's configured ratio or sparsity;
    requested: this round's target (iterative rounds), default level."""
    structured = strategy == "l1_filter"
    pruning = (
        {"_target_": "sweeplab.pruning.structured.L1Filter", "name": strategy,
         "granularity": "channel", "ratio": level, "scope": "layer", "normalize": "mean",
         "exclude": [], "layer_ratio": {}}
        if structured else
        {"_target_": "sweeplab.pruning.GlobalMagnitude", "name": strategy, "sparsity": level,
         "scope": "global"}
    )  # fmt: skip
    config = {
        "data": {"name": "digits", "val_fraction": 0.1},
        "model": {"_target_": "sweeplab.models.lenet.LeNet5", "name": "lenet5", "init": None},
        "train": {"epochs": 2, "lr": 0.05},
        "finetune": {"epochs": 1, "lr": 0.01},
        "pruning": pruning,
        "schedule": _SCHEDULES[schedule],
        "recovery": _RECOVERIES[recovery],
        "seed": seed,
    }
    s = level if requested is None else requested
    dense_acc = 0.95 - 0.01 * seed
    acc = dense_acc - 0.02 * s**2 - (0.005 if recovery == "lr_rewind" else 0.0)
    if structured:
        # A physically smaller model: every count is of the pruned model, no zeros left.
        total = nonzero = round(DENSE * (1 - s) ** 1.5)
    else:
        total, nonzero = DENSE, DENSE - round(0.98 * DENSE * s)
    metrics = dict(
        sparsity_achieved=s, params_total=total, params_prunable=98_000, params_nonzero=nonzero,
        compression=DENSE / nonzero, acc_dense_test=dense_acc, acc_pruned_test=acc - 0.1,
        acc_finetuned_test=acc, granularity="channel" if structured else "weight",
        flops_dense=2_000_000, flops=2_000_000 * nonzero / DENSE,
        size_dense_bytes=4 * DENSE, size_bytes=4 * nonzero,
        latency_b1_dense_ms=1.0, latency_b1_ms=0.2 + 0.8 * nonzero / DENSE,
        latency_b1_dense_q25_ms=0.99, latency_b1_dense_q75_ms=1.01,
        latency_b1_q25_ms=0.19 + 0.8 * nonzero / DENSE,
        latency_b1_q75_ms=0.21 + 0.8 * nonzero / DENSE,
        latency_b64_dense_ms=8.0, latency_b64_ms=8.0 * nonzero / DENSE,
    )  # fmt: skip
    rid = identity.run_id(config)
    return ResultRow(
        run_id=rid if round_ is None or round_ == 2 else f"{rid}-r{round_}",
        dense_id=identity.dense_id(config), experiment="adhoc", data="digits", model="lenet5",
        strategy=strategy, scope=pruning["scope"], schedule=schedule, recovery=recovery,
        seed=seed, sparsity_requested=s, round=round_, metrics=metrics, config=config,
    )  # fmt: skip


def write_mixed(results: Path) -> None:
    """l1_filter at ratios 0.5 and 0.8; global_magnitude oneshot (finetune, lr_rewind) and
    iterative (two rounds) at sparsity 0.5 and 0.9; seeds 0 and 1."""
    rows = []
    for seed in (0, 1):
        for ratio in (0.5, 0.8):
            rows.append(mixed_row("l1_filter", ratio, seed))
        for s in (0.5, 0.9):
            for recovery in ("finetune", "lr_rewind"):
                rows.append(mixed_row("global_magnitude", s, seed, recovery=recovery))
            first = 1 - (1 - s) ** 0.5
            rows.append(mixed_row("global_magnitude", s, seed, schedule="iterative", round_=1,
                                  requested=first))  # fmt: skip
            rows.append(mixed_row("global_magnitude", s, seed, schedule="iterative", round_=2))
    for row in rows:
        store.write_row(results, row)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    write_mixed(tmp_path / "res")
    return tmp_path / "res"


def structured(tmp_path: Path) -> Path:
    """Only the l1_filter rows (as `--where model=lenet5` after one structured sweep)."""
    for seed in (0, 1):
        for ratio in (0.5, 0.8):
            store.write_row(tmp_path, mixed_row("l1_filter", ratio, seed))
    return tmp_path


def test_dense_point_costs_are_the_dense_models(tmp_path: Path) -> None:
    summary = summarize(load_rows(structured(tmp_path)))
    pts = summary.points
    dense = pts[pts["series"] == "dense"].iloc[0]
    assert dense["nonzero"] == DENSE and dense["compression"] == 1.0
    assert dense["flops"] == 2_000_000 and dense["size"] == 4 * DENSE
    assert dense["latency"] == 1.0
    # Dense is the most accurate point, the pruned ones are cheaper: all on every front.
    assert summary.costs == ["params", "flops", "latency", "size"]
    for flag in ("pareto", "pareto_flops", "pareto_latency", "pareto_size"):
        assert pts[flag].all(), flag
    line = next(x for x in render(summary, "md", "points").splitlines() if x.startswith("| dense"))
    assert "100,000" in [c.strip() for c in line.split("|")]


def test_structured_ratio_is_an_axis_not_a_series(tmp_path: Path) -> None:
    summary = summarize(load_rows(structured(tmp_path)))
    pruned = summary.points[summary.points["series"] != "dense"]
    assert set(pruned["series"]) == {"l1_filter"}
    assert sorted(pruned["sparsity_requested"]) == [0.5, 0.8] and set(pruned["n"]) == {2}
    cells = pivot_cells(summary)
    assert list(cells["series"]) == ["l1_filter"] * 3
    assert list(cells["column"]) == ["dense", "0.5", "0.8"]
    lines = [x for x in render(summary, "md", "pivot").splitlines() if x.startswith("| ")]
    assert [[c.strip() for c in x.split("|")[1:-1]] for x in lines][0] == [
        "strategy", "dense", "0.5", "0.8"
    ]  # fmt: skip
    assert [x.split("|")[1].strip() for x in lines[1:]] == ["l1_filter"]


def test_mixed_folder_series(mixed: Path) -> None:
    summary = summarize(load_rows(mixed))
    pruned = summary.points[summary.points["series"] != "dense"]
    # Schedule and recovery split global_magnitude (by their values alone); their _target_ and
    # name keys say nothing the labels do not; ratio and sparsity are axes; l1_filter has one
    # series, so its label is the strategy.
    assert set(pruned["series"]) == {
        "l1_filter",
        "global_magnitude [oneshot, finetune]",
        "global_magnitude [oneshot, lr_rewind]",
        "global_magnitude [iterative, finetune]",
    }
    assert set(pruned["n"]) == {2}


@pytest.mark.parametrize("by", ["strategy", "scope", "schedule", "recovery", "granularity"])
def test_every_label_column_works_as_by(mixed: Path, tmp_path: Path, by: str, capsys) -> None:
    rows = load_rows(mixed)
    values = sorted(set(rows[by]))
    assert len(values) == 2
    summary = summarize(rows, by=[by])
    assert summary.groups == ["data", "model", by]
    pts = summary.points
    assert list(pts.columns).count(by) == 1
    for value in values:
        block = pts[pts[by] == value]
        # Each group's table has its own dense baseline, at the dense model's costs.
        dense = block[block["series"] == "dense"]
        assert len(dense) == 1 and dense["nonzero"].iloc[0] == DENSE
        assert dense["acc"].iloc[0] == pytest.approx(0.945)
        assert (block["series"] != "dense").sum() >= 2
    assert main(["table", str(mixed), "--by", by]) == 0
    text = capsys.readouterr().out
    for value in values:
        assert f"### digits / lenet5 / {by}={value}" in text
    assert main(["table", str(mixed), "--by", by, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == ["data", "model", by]
    out = tmp_path / "report.html"
    plots = [] if by == "strategy" else ["--no-plots"]  # plots once: they take a second
    assert main(["report", str(mixed), "--by", by, "-o", str(out), *plots]) == 0
    page = out.read_text()
    data = json.loads(page.split('id="sweeplab-data">', 1)[1].split("</script>", 1)[0])
    assert [g["title"] for g in data["groups"]] == [f"digits / lenet5 / {by}={v}" for v in values]
    assert not any(s["name"].startswith("dense") for s in data["series"])


def test_best_within_delta_selects_on_validation_and_reports_test(tmp_path: Path) -> None:
    """The most compressed point within Δ is chosen on validation accuracy: at 0.9 the test
    drop is small (0.4 points) but the validation drop is 3 points, so 0.5 is the best."""
    for s, val_drop in ((0.5, 0.002), (0.9, 0.03)):
        row = mixed_row("global_magnitude", s, 0)
        row.metrics["acc_dense_val"] = 0.96
        row.metrics["acc_finetuned_val"] = 0.96 - val_drop
        row.metrics["acc_finetuned_test"] = row.metrics["acc_dense_test"] - 0.004
        store.write_row(tmp_path, row)
    summary = summarize(load_rows(tmp_path), delta=1.0)
    best = summary.points[summary.points["best"]]
    assert list(best["sparsity_requested"]) == [0.5]
    table = render(summary, "md", "best")
    assert "selected on validation accuracy" in table and "Δ val acc" in table


def test_columns_follow_the_recovery_and_show_the_lottery_tickets_control(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A weight-rewind folder says "after weight_rewind" and shows acc_reinit_test next to the
    ticket; a folder mixing recoveries says "after recovery"; finetune-only output is as before."""
    for seed in (0, 1):
        row = mixed_row("global_magnitude", 0.9, seed)
        row.recovery = "weight_rewind"
        row.config["recovery"] = {"_target_": "sweeplab.engine.recovery.WeightRewind",
                                  "name": "weight_rewind", "step": 0, "control": True}  # fmt: skip
        row.run_id = identity.run_id(row.config)
        row.metrics["acc_reinit_test"] = 0.5 + 0.01 * seed
        store.write_row(tmp_path / "lth", row)
    assert main(["table", str(tmp_path / "lth"), "--view", "points"]) == 0
    out = capsys.readouterr().out
    assert "after weight_rewind" in out and "acc after weight_rewind %" in out
    header = next(line for line in out.splitlines() if line.startswith("| strategy"))
    line = next(x for x in out.splitlines() if x.startswith("| global_magnitude"))
    cells = dict(zip(header.split("|"), line.split("|"), strict=True))
    assert cells[" acc re-init control % "].strip() == "50.50"
    store.write_row(tmp_path / "lth", mixed_row("global_magnitude", 0.9, 0))
    assert main(["table", str(tmp_path / "lth"), "--view", "pivot"]) == 0
    assert "after recovery" in capsys.readouterr().out
