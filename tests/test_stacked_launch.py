"""hydra/launcher=stacked end to end on digits: the rows a per-run sweep writes, faster.

Same run ids, bitwise-equal masks and accuracies within 0.1 points of the default launcher;
finished rows reused across the two engines; jobs that cannot stack run alone in the same
sweep; a stacked sweep killed with SIGKILL mid-group resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST, REPO, rows_in
from sweeplab.engine import row_weights
from sweeplab.results import store

SWEEP = [
    "run", "-m", "pruning=random,global_magnitude", "pruning.sparsity=0.9", "seed=0,1",
    *FAST, "measure.latency=false",
]  # fmt: skip
STACKED = "hydra/launcher=stacked"


def rows(res: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in (store.read_row(p) for p in rows_in(res))}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, cli) -> tuple[Path, Path]:
    """The same 4-run sweep (2 seeds) with the default launcher and stacked."""
    tmp = tmp_path_factory.mktemp("stacked")
    for name, extra in (("plain", []), ("stacked", [STACKED])):
        done = cli([*SWEEP, *extra, f"paths.results_dir={tmp / name}"], cwd=tmp)
        assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "plain", tmp / "stacked"


def test_stacked_rows_equal_per_run_rows(both) -> None:
    plain, stacked = (rows(res) for res in both)
    assert set(plain) == set(stacked) and len(plain) == 4  # the same run ids
    for rid, row in stacked.items():
        assert row["status"] == "ok" and row["engine"] == "stacked", rid
        assert row["stack_size"] == 4 and row["stack_alone"] is None, rid  # one finetune group
        assert abs(row["acc_finetuned_test"] - plain[rid]["acc_finetuned_test"]) <= 0.001, rid
        assert row["acc_pruned_test"] == plain[rid]["acc_pruned_test"], rid
        assert row["acc_dense_test"] == plain[rid]["acc_dense_test"], rid  # dense: 2 seeds stacked
        assert row["params_nonzero"] == plain[rid]["params_nonzero"], rid
        mine, _ = row_weights.load(both[1], rid, row["weights_sha256"])
        theirs, _ = row_weights.load(both[0], rid, plain[rid]["weights_sha256"])
        for name, value in mine.items():
            assert torch.equal(value == 0, theirs[name] == 0), (rid, name)  # masks bitwise
            assert torch.allclose(value, theirs[name], atol=1e-4), (rid, name)
        # The row's finetune seconds are its share of the group's fit, not the wait for it.
        assert 0 < row["seconds"]["finetune"] < plain[rid]["seconds"]["finetune"] * 4


def test_finished_rows_are_reused_by_either_engine(both, cli) -> None:
    plain, stacked = both
    for res, extra in ((plain, [STACKED]), (stacked, [])):
        again = cli([*SWEEP, *extra, f"paths.results_dir={res}"], cwd=res.parent)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "sweep: 0 ok, 4 skipped" in again.stdout


def test_unstackable_jobs_run_alone_in_the_same_sweep(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    args = [
        "run", "-m", "pruning=global_magnitude,neuron_l1,set", *FAST, STACKED,
        "measure.latency=false", "model.hidden=[32,16]", f"paths.results_dir={res}",
    ]  # fmt: skip
    done = cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {r["strategy"]: r for r in rows(res).values()}
    assert set(found) == {"global_magnitude", "neuron_l1", "set"}
    assert {r["status"] for r in found.values()} == {"ok"}
    assert found["set"]["stack_alone"] == "train: it has callbacks of its own"  # SET
    assert found["neuron_l1"]["stack_size"] == 1  # a smaller model: no other fit shares it


def test_bad_launcher_settings_are_one_line(tmp_path: Path, cli) -> None:
    for key, value in (("max_variants", "0"), ("memory_gb", "-1")):
        args = [*SWEEP, STACKED, f"hydra.launcher.{key}={value}", f"paths.results_dir={tmp_path}"]
        done = cli(args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert f"hydra.launcher.{key}={value}" in done.stderr
        assert rows_in(tmp_path) == []


def test_a_stacked_sweep_killed_mid_group_resumes(tmp_path: Path, cli) -> None:
    """SIGKILL while the group's finetune fit trains; the same command finishes every run,
    with the rows the default launcher writes."""
    sweep = [
        "run", "-m", "pruning=global_magnitude", "pruning.sparsity=0.5,0.9", "seed=0,1",
        "train.epochs=2", "finetune.epochs=20", "measure.latency=false",
    ]  # fmt: skip
    res = tmp_path / "res"
    args = [sys.executable, "-m", "sweeplab", *sweep, STACKED, f"paths.results_dir={res}"]
    lines = ["trainer.progress=lines", "trainer.progress_every=0"]  # a line per epoch
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    killed = subprocess.Popen([*args, *lines], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert killed.stdout is not None
    for line in killed.stdout:
        if "finetune x4  epoch 1/" in line:  # the group of 4 is training: kill it mid-fit
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert rows_in(res) == []  # no run had finished
    resumed = cli([*sweep, STACKED, f"paths.results_dir={res}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "sweep: 4 ok" in resumed.stdout
    plain_dir = f"paths.results_dir={tmp_path / 'plain'}"  # the same cached dense models
    plain = cli([*sweep, plain_dir, f"paths.cache_dir={res / 'cache'}"], cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    reference = rows(tmp_path / "plain")
    for rid, row in rows(res).items():
        assert row["status"] == "ok" and row["dense_source"] == "cache", rid  # cached before
        assert abs(row["acc_finetuned_test"] - reference[rid]["acc_finetuned_test"]) <= 0.001


def test_launcher_is_listed_as_a_choice(tmp_path: Path, cli) -> None:
    done = cli(["run", "hydra/launcher=stackd", f"paths.results_dir={tmp_path}"], cwd=tmp_path)
    assert done.returncode == 2 and "stacked" in done.stderr
    assert (REPO / "conf" / "hydra" / "launcher" / "stacked.yaml").is_file()
