"""Tables: Pareto fronts, seed statistics, the dense baseline, best within Δ, formats, filters,
and the row index that keeps `sweeplab table` fast."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeplab.cli import main
from sweeplab.errors import SweeplabError
from sweeplab.results import identity, store
from sweeplab.results.analysis import best_within, pivot_cells, summarize
from sweeplab.results.filters import filter_rows
from sweeplab.results.pareto import pareto_front
from sweeplab.results.render import latex_escape, render
from sweeplab.results.row import ResultRow
from sweeplab.results.rows import INDEX_FILE, load_rows


def test_pareto_front() -> None:
    cost = [10, 5, 5, 1, 7]
    gain = [0.9, 0.8, 0.7, 0.5, 0.6]
    # (5, .7) is dominated by (5, .8); (7, .6) by (5, .8).
    assert pareto_front(cost, gain).tolist() == [True, True, False, True, False]


def make_row(
    data: str, strategy: str, s: float, seed: int, *, flops: bool = False, epochs: int = 1,
    acc: float | None = None,
) -> ResultRow:  # fmt: skip
    """A plausible row: accuracy falls with sparsity, random worse than magnitude."""
    config = {
        "data": {"name": data, "val_fraction": 0.1},
        "model": {"name": "mlp", "hidden": [128, 64]},
        "train": {"epochs": 2, "lr": 0.05},
        "finetune": {"epochs": epochs, "lr": 0.01},
        "pruning": {"name": strategy, "sparsity": s, "scope": "global"},
        "seed": seed,
        "paths": {"results_dir": "/somewhere"},
    }
    dense_acc = 0.95 - 0.01 * seed
    loss = s**3 * (0.6 if strategy == "random" else 0.05) + 0.003 * seed
    fin = dense_acc - loss if acc is None else acc
    total, prunable = 10_000, 9_800
    nonzero = total - round(prunable * s)
    metrics = dict(
        sparsity_achieved=s, params_total=total, params_prunable=prunable,
        params_nonzero=nonzero, compression=total / nonzero, acc_dense_test=dense_acc,
        acc_pruned_test=fin - 0.1, acc_finetuned_test=fin,
        layer_sparsity={"net.1.weight": s * 0.9, "net.3.weight": min(0.99, s * 1.1)},
    )  # fmt: skip
    if flops:
        metrics.update(flops_dense=2e4, flops=2e4 * (1 - s) + 200)
    return ResultRow(
        run_id=identity.run_id(config), dense_id=identity.dense_id(config), experiment="t",
        status="ok", data=data, model="mlp", strategy=strategy, scope="global",
        schedule="oneshot", recovery="finetune", seed=seed, sparsity_requested=s,
        metrics=metrics, config=config,
    )  # fmt: skip


def write_rows(
    results: Path,
    strategies: Sequence[str] = ("global_magnitude", "random"),
    sparsities: Sequence[float] = (0.5, 0.9),
    seeds: Sequence[int] = (0, 1),
    datasets: Sequence[str] = ("digits",),
    **kwargs: object,
) -> list[ResultRow]:
    """Write a grid of rows through store.write_row; returns them."""
    rows = [
        make_row(d, st, s, seed, **kwargs)  # type: ignore[arg-type]
        for d in datasets
        for st in strategies
        for s in sparsities
        for seed in seeds
    ]
    for row in rows:
        store.write_row(results, row)
    return rows


def rows() -> pd.DataFrame:
    out = []
    for seed, dense_acc in ((0, 0.97), (1, 0.95)):
        for strategy, s, acc in (
            ("magnitude", 0.5, 0.94),
            ("magnitude", 0.9, 0.90),
            ("random", 0.9, 0.5),
        ):
            out.append(dict(
                run_id=f"{strategy}{s}{seed}", dense_id=f"d{seed}", status="ok", data="digits",
                model="mlp", strategy=strategy, scope="global", seed=seed, sparsity_requested=s,
                sparsity_achieved=s, params_total=1000, params_nonzero=int(1000 * (1 - s)),
                compression=1 / (1 - s), acc_dense_test=dense_acc, acc_pruned_test=acc - 0.1,
                acc_finetuned_test=acc + 0.01 * seed,
            ))  # fmt: skip
    out.append(dict(run_id="bad", status="failed", data="digits", model="mlp", strategy="random"))
    return pd.DataFrame(out)


def test_summary_has_seed_statistics_dense_baseline_and_front() -> None:
    summary = summarize(rows())
    table = summary.points
    assert summary.failed == 1 and summary.costs == ["params"]
    dense = table[table["strategy"] == "dense"].iloc[0]
    assert dense["n"] == 2 and dense["acc"] == pytest.approx(0.96)
    assert dense["compression"] == 1.0 and dense["nonzero"] == 1000
    mag = table[(table["strategy"] == "magnitude") & (table["sparsity_requested"] == 0.9)].iloc[0]
    assert mag["n"] == 2 and mag["acc"] == pytest.approx(0.905)
    assert mag["acc_std"] == pytest.approx(np.std([0.90, 0.91], ddof=1))
    assert sorted(mag["run_ids"]) == ["magnitude0.90", "magnitude0.91"]
    front = dict(
        zip(
            table["strategy"] + table["sparsity_requested"].astype(str),
            table["pareto"],
            strict=True,
        )
    )
    assert front == {
        "dense0.0": True,
        "magnitude0.5": True,
        "magnitude0.9": True,
        "random0.9": False,
    }


def test_best_within_delta_uses_each_runs_own_dense_model() -> None:
    # magnitude 0.5: drops 0.97-0.94=3 and 0.95-0.95=0 points -> mean 1.5; 0.9: 7 and 4.
    summary = summarize(rows(), delta=1.5)
    best = best_within(summary).set_index("series")
    assert (
        bool(best.loc["magnitude", "best"]) and best.loc["magnitude", "sparsity_requested"] == 0.5
    )
    assert best.loc["magnitude", "drop"] == pytest.approx(0.015)
    assert not bool(best.loc["random", "best"])  # nothing within 1.5 points: closest shown
    assert not best_within(summarize(rows(), delta=1.0))["best"].any()
    assert best_within(summarize(rows(), delta=5.5)).set_index("series").loc[
        "magnitude", "sparsity_requested"
    ] == pytest.approx(0.9)
    with pytest.raises(SweeplabError, match="--delta -1"):
        summarize(rows(), delta=-1)


def test_pivot_has_dense_column_per_strategy_and_before_finetune() -> None:
    summary = summarize(rows())
    cells = pivot_cells(summary)
    dense = cells[cells["column"] == "dense"]
    assert sorted(dense["series"]) == ["magnitude", "random"]
    assert dense["acc"].tolist() == pytest.approx([0.96, 0.96])
    text = render(summary, "md", "pivot")
    line = next(x for x in text.splitlines() if x.startswith("| magnitude "))
    # after ± 95% CI half-width (t, n = 2: 12.71 * std / sqrt 2) / before, for sparsity 0.9
    assert "90.50 ± 6.35 / 80.00" in line and "96.00 ± 12.71" in line
    by_c = pivot_cells(summary, "compression")
    assert set(by_c["column"]) == {"dense", "2x", "10x"}


def test_markdown_marks_front_aligns_columns_and_shows_the_ci() -> None:
    text = render(summarize(rows()), "md", "points")
    assert "### digits / mlp" in text
    table = [x for x in text.splitlines() if x.startswith("|")]
    assert len({len(x) for x in table}) == 1  # aligned
    line = next(x for x in table if x.startswith("| magnitude ") and " 0.9 " in x)
    assert "90.50 ± 6.35" in line and line.rstrip().endswith("* |")
    assert next(x for x in table if x.startswith("| random ")).rstrip().endswith("  |")


def test_all_view_has_pivot_pareto_and_best() -> None:
    text = render(summarize(rows()), "md")
    assert text.count("### digits / mlp") == 1
    for caption in ("Test accuracy % by requested sparsity", "Pareto table", "Best compression"):
        assert caption in text


def test_series_split_by_varying_config_and_seeds_pooled_only_within(tmp_path: Path) -> None:
    for epochs in (1, 5):
        write_rows(tmp_path, strategies=("random",), sparsities=(0.9,), epochs=epochs)
    summary = summarize(load_rows(tmp_path))
    pruned = summary.points[summary.points["strategy"] != "dense"]
    assert sorted(pruned["series"]) == ["random [finetune.epochs=1]", "random [finetune.epochs=5]"]
    assert set(pruned["n"]) == {2}
    dense = summary.points[summary.points["strategy"] == "dense"]
    assert dense["series"].tolist() == ["dense"] and dense["n"].iloc[0] == 2  # same dense models


def test_flops_front_and_by_grouping(tmp_path: Path) -> None:
    write_rows(tmp_path, flops=True, datasets=("digits", "mnist"))
    summary = summarize(load_rows(tmp_path), by=["seed"])
    assert summary.costs == ["params", "flops"] and summary.groups == ["data", "model", "seed"]
    assert {"pareto", "pareto_flops", "speedup"} <= set(summary.points.columns)
    assert len(summary.points.groupby(summary.groups)) == 4
    text = render(summary, "md", "points")
    assert "### digits / mlp / seed=0" in text and "front FLOPs" in text
    with pytest.raises(SweeplabError, match="--by colour: no such column"):
        summarize(load_rows(tmp_path), by=["colour"])


def test_csv_json_and_latex_formats() -> None:
    summary = summarize(rows())
    assert render(summary, "csv").splitlines()[0].startswith("data,model,series,strategy")
    assert len(json.loads(render(summary, "json", "points"))) == 4
    everything = json.loads(render(summary, "json"))  # strict JSON: no NaN
    assert set(everything) >= {"points", "pivot", "best", "delta"}
    latex = render(summary, "latex")
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex
    assert r"$\pm$" in latex and "±" not in latex
    assert latex_escape("a_b & 50% <x>") == r"a\_b \& 50\% \textless{}x\textgreater{}"
    with pytest.raises(SweeplabError, match="--format 'xml'"):
        render(summary, "xml")


def test_filters() -> None:
    df = rows()
    assert set(filter_rows(df, ["strategy=random"])["strategy"]) == {"random"}
    assert len(filter_rows(df, ["seed=1"])) == 3
    assert len(filter_rows(df, ["strategy=random,magnitude", "sparsity_requested=0.9"])) == 4
    with pytest.raises(SweeplabError, match="no such column"):
        filter_rows(df, ["colour=red"])
    with pytest.raises(SweeplabError, match="not key=value"):
        filter_rows(df, ["data"])
    with pytest.raises(SweeplabError, match="--where data=mnist matches no run; data has: digits"):
        filter_rows(df, ["data=mnist"])


def test_index_is_reused_and_follows_changes(tmp_path: Path) -> None:
    written = write_rows(tmp_path)
    first = load_rows(tmp_path)
    assert len(first) == len(written) and (tmp_path / INDEX_FILE).exists()
    assert first["finetune.epochs"].tolist() == [1] * len(written)  # config flattened
    assert "config" not in first.columns and "layer_sparsity" not in first.columns
    # A second read parses no row file: a corrupt row with an unchanged stamp goes unnoticed.
    victim = store.row_path(tmp_path, written[0].run_id)
    stat = victim.stat()
    text = victim.read_text()
    victim.write_text(text.replace('"ok"', '"no"'))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (load_rows(tmp_path)["status"] == "ok").all()
    # A rewritten file (new mtime), a new file and a deleted file are all picked up.
    victim.write_text(text.replace('"ok"', '"failed"'))
    store.row_path(tmp_path, written[1].run_id).unlink()
    store.write_row(tmp_path, make_row("digits", "random", 0.7, 0))
    again = load_rows(tmp_path).set_index("run_id")
    assert again.loc[written[0].run_id, "status"] == "failed"
    assert written[1].run_id not in again.index and len(again) == len(written)
    # The index and a full parse agree.
    (tmp_path / INDEX_FILE).unlink()
    fresh = load_rows(tmp_path).set_index("run_id")
    pd.testing.assert_frame_equal(fresh.sort_index(), again.sort_index(), check_like=True)


def test_bad_row_file_is_named_and_the_rest_load(tmp_path: Path, capsys) -> None:
    write_rows(tmp_path, strategies=("random",), sparsities=(0.5,), seeds=(0,))
    (store.runs_dir(tmp_path) / "broken.json").write_text("{not json")
    rows = load_rows(tmp_path)
    assert "broken.json is not a" in capsys.readouterr().err
    assert len(rows) == 1 and "broken" not in set(rows["run_id"])


def test_table_command_formats_and_messages(tmp_path: Path, capsys) -> None:
    write_rows(tmp_path, flops=True)
    assert main(["table", str(tmp_path), "--where", "strategy=random", "--delta", "2"]) == 0
    out = capsys.readouterr().out
    assert "| random " in out and "global_magnitude" not in out
    assert "within 2 accuracy point(s)" in out
    assert main(["table", str(tmp_path), "--format", "latex", "--view", "best"]) == 0
    assert capsys.readouterr().out.count(r"\begin{tabular}") == 1
    assert main(["table", str(tmp_path), "--where", "data=cifar10"]) == 2
    assert "--where data=cifar10 matches no run; data has: digits" in capsys.readouterr().err
    assert main(["table", str(tmp_path), "--where", "train.lr=0.05", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("data,model,series")


def test_table_notes_rows_of_mixed_thread_counts(tmp_path: Path, capsys) -> None:
    written = write_rows(tmp_path, strategies=("random",), sparsities=(0.5, 0.9), seeds=(0,))
    assert main(["table", str(tmp_path)]) == 0
    assert "torch threads" not in capsys.readouterr().err  # rows older than the field
    for row, threads in zip(written, (1, 2), strict=True):
        store.write_row(tmp_path, dataclasses.replace(row, threads=threads))
    assert main(["table", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "note: torch threads of these rows: 1 (1 row), 2 (1 row): results can differ" in err
    store.write_row(tmp_path, dataclasses.replace(written[0], threads=2))
    assert main(["table", str(tmp_path)]) == 0
    assert "torch threads" not in capsys.readouterr().err  # every row at 2
