"""End to end on digits: a real multirun sweep, one dense model, skips, repeatability, failures.

Commands run in this process (the `cli` fixture) except the repeatability check's fresh process
(`cli_subprocess`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FAST, REPO, rows_in
from sweeplab.results import store

SWEEP = [
    "run",
    "-m",
    "pruning=random,layer_magnitude,global_magnitude",
    "pruning.sparsity=0.5,0.8,0.9,0.95",
    *FAST,
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, cli) -> tuple[Path, str, str]:
    """One 3 x 4 sweep, then the same command again."""
    tmp = tmp_path_factory.mktemp("sweep")
    args = [*SWEEP, f"paths.results_dir={tmp}/res"]
    first = cli(args, cwd=tmp)
    assert first.returncode == 0, first.stderr[-3000:]
    second = cli(args, cwd=tmp)
    assert second.returncode == 0, second.stderr[-3000:]
    return tmp / "res", first.stdout, second.stdout


def test_sweep_writes_one_ok_row_per_run(swept) -> None:
    res, _, _ = swept
    rows = [store.read_row(p) for p in rows_in(res)]
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {(r["strategy"], r["sparsity_requested"]) for r in rows} == {
        (s, x)
        for s in ("random", "layer_magnitude", "global_magnitude")
        for x in (0.5, 0.8, 0.9, 0.95)
    }
    for r in rows:
        assert abs(r["sparsity_achieved"] - r["sparsity_requested"]) * r["params_prunable"] <= 1
        assert r["params_nonzero"] <= r["params_total"] and r["compression"] > 1
        assert 0 <= r["acc_finetuned_test"] <= 1 and set(r["seconds"]) >= {
            "dense",
            "prune",
            "finetune",
        }
        assert r["config"]["pruning"]["sparsity"] == r["sparsity_requested"]
        assert (
            r["versions"]["torch"]
            and r["run_id"] == res.joinpath("runs", f"{r['run_id']}.json").stem
        )


def test_dense_model_is_trained_exactly_once(swept) -> None:
    res, first, _ = swept
    rows = [store.read_row(p) for p in rows_in(res)]
    assert len({r["dense_id"] for r in rows}) == 1
    assert sorted(r["dense_source"] for r in rows) == ["cache"] * 11 + ["trained"]
    assert len(list((res / "cache" / "dense").glob("*.pt"))) == 1
    assert len({r["acc_dense_test"] for r in rows}) == 1


def test_rerun_skips_every_finished_run(swept) -> None:
    res, first, second = swept
    assert first.count("done ") == 12
    assert second.count("skip ") == 12 and "done " not in second
    assert "sweep: 0 ok, 12 skipped (already finished), 0 failed" in second


def test_table_prints_the_pareto_table(swept, cli) -> None:
    res, _, _ = swept
    proc = cli(["table", str(res), "--view", "points"], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "### digits / mlp" in lines
    assert sum(line.startswith("| ") for line in lines) == 1 + 1 + 12  # header, dense, runs
    assert any(line.rstrip().endswith("* |") for line in lines)


def test_same_config_and_seed_give_identical_metrics(swept, tmp_path: Path, cli_subprocess) -> None:
    """One cell of the sweep again, alone, in a fresh process: the same numbers (its dense model
    trained again, in a process that ran nothing else)."""
    res, _, _ = swept
    args = ["run", "pruning=random", "pruning.sparsity=0.8", *FAST]
    proc = cli_subprocess([*args, f"paths.results_dir={tmp_path}/b"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (b,) = (store.read_row(p) for p in rows_in(tmp_path / "b"))
    (a,) = (store.read_row(p) for p in rows_in(res) if p.stem == b["run_id"])
    assert (a["strategy"], a["sparsity_requested"]) == ("random", 0.8)
    assert b["dense_source"] == "trained"
    for key in (
        "acc_dense_test",
        "acc_pruned_test",
        "acc_finetuned_test",
        "params_nonzero",
        "layer_sparsity",
    ):
        assert a[key] == b[key], key


def test_a_diverging_run_writes_a_failed_row(tmp_path: Path, cli) -> None:
    proc = cli(["run", "train.lr=1e9", *FAST, f"paths.results_dir={tmp_path}/res"], cwd=tmp_path)
    assert proc.returncode != 0
    (row,) = [store.read_row(p) for p in rows_in(tmp_path / "res")]
    assert row["status"] == "failed" and "dense loss became nan" in row["error"]
    assert "lower train.lr (now 1000000000.0)" in row["error"]


def test_a_bad_cell_fails_alone_and_the_sweep_says_so(tmp_path: Path, cli) -> None:
    proc = cli(
        ["run", "-m", "pruning.sparsity=0.5,1.5,0.9", *FAST, f"paths.results_dir={tmp_path}/res"],
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "sweep: 2 ok, 0 skipped (already finished), 1 failed" in proc.stderr
    assert "failed: pruning.sparsity=1.5" in proc.stderr and "outside [0, 1)" in proc.stderr
    rows = [store.read_row(p) for p in rows_in(tmp_path / "res")]
    assert sorted(r["sparsity_requested"] for r in rows) == [0.5, 0.9]


def test_every_hydra_job_folder_keeps_its_config(swept) -> None:
    """Hydra's per-job folders were created empty (output_subdir: null): each now holds
    Hydra's usual .hydra/ files, the job's overrides matching one of the rows."""
    import yaml

    res, _, _ = swept
    jobs = sorted(p for p in (res / "hydra").glob("*/*") if p.is_dir())
    assert len(jobs) == 24  # two sweeps of 12 jobs
    rows = {(r["strategy"], r["sparsity_requested"]) for r in map(store.read_row, rows_in(res))}
    for job in jobs:
        files = {p.name for p in (job / ".hydra").iterdir()}
        assert files == {"config.yaml", "hydra.yaml", "overrides.yaml"}, job
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        assert (config["pruning"]["name"], config["pruning"]["sparsity"]) in rows
