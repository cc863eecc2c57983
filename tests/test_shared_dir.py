"""A results dir shared by collaborators and by sweeps that get killed: files follow the umask,
a checkpoint knows whose weights it holds, and the next sweep removes killed writers' temp files.

Commands run in this process (the `cli` fixture); the writer that dies mid-write is a subprocess
(os._exit inside atomic_write)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import rows_in
from sweeplab.engine import cache
from sweeplab.results import store

TINY = ["train.epochs=1", "finetune.epochs=1", "measure.latency=false"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_rows_and_checkpoints_get_the_users_umask(umask: int, mode: int, tmp_path: Path) -> None:
    old = os.umask(umask)
    try:
        store.atomic_write_text(tmp_path / "runs" / "r.json", "{}")
        owner = cache.owner("d", "d-sha")
        cache.save_state(tmp_path / "d.pt", nn.Linear(2, 2).state_dict(), owner=owner)
    finally:
        os.umask(old)
    for path in (tmp_path / "runs" / "r.json", tmp_path / "d.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["d.pt", "r.json"]


def test_a_checkpoint_copied_over_another_dense_models_is_retrained(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    args = ["run", "-m", "seed=0,1", *TINY, f"paths.results_dir={res}"]
    first = cli(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = {r["seed"]: r for r in map(store.read_row, rows_in(res))}
    d0, d1 = rows[0]["dense_id"], rows[1]["dense_id"]
    # Seed 1's dense model copied over seed 0's: same shapes, loads without complaint.
    shutil.copy(cache.checkpoint_path(res / "cache", d1), cache.checkpoint_path(res / "cache", d0))
    store.row_path(res, rows[0]["run_id"]).unlink()

    again = cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    (warning,) = [line for line in again.stderr.splitlines() if "warning" in line]
    assert f"holds dense model {d1}, not dense model {d0}" in warning
    assert warning.endswith(f"training {d0} again")
    redone = store.read_row(store.row_path(res, rows[0]["run_id"]))
    assert redone["dense_source"] == "trained"
    for key in ("acc_dense_test", "acc_pruned_test", "acc_finetuned_test"):
        assert redone[key] == rows[0][key], key  # the true seed-0 model's, not seed 1's
    assert again.stdout.count("done ") == 1 and again.stdout.count("skip ") == 1


def test_a_snapshot_of_another_step_or_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.step5.pt"
    cache.save_state(path, {"w": torch.ones(2)}, owner=cache.owner("d", "sha-a", step=5))
    assert cache.load_state(path, cache.owner("d", "sha-a", step=5)) is not None
    assert cache.load_state(path, cache.owner("d", "sha-a", step=10)) is None
    assert "holds dense model d at step 5, not dense model d at step 10" in capsys.readouterr().err
    # Same id, other config (a 12-hex collision, an edited file): the digests are named.
    assert cache.load_state(path, cache.owner("d", "sha-b", step=5)) is None
    assert "of config sha256 sha-a, not dense model d at step 5 of config sha256 sha-b" in (
        capsys.readouterr().err
    )


def test_the_next_sweep_removes_temp_files_of_writers_killed_mid_write(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    # A writer that dies inside atomic_write_text, before its rename (as kill -9 would).
    die = (
        "import os, sys; from pathlib import Path; from sweeplab.results import store; "
        "print(os.getpid(), flush=True); os.replace = lambda *a: os._exit(9); "
        "store.atomic_write_text(Path(sys.argv[1]) / 'runs' / 'x.json', '{}')"
    )
    dead = subprocess.run([sys.executable, "-c", die, str(res)], capture_output=True, text=True)
    assert dead.returncode == 9
    (row_temp,) = (res / "runs").glob(".x.json.*.tmp")
    # Its checkpoint and claim temps (same dead pid), and a live writer's file (this process).
    host, pid = socket.gethostname(), dead.stdout.strip()
    (res / "cache" / "dense").mkdir(parents=True)
    dead_files = [row_temp, res / "cache" / "dense" / f".d.pt.{host}-{pid}.ab12cd34.tmp"]
    (res / "claims").mkdir()
    dead_files.append(res / "claims" / f".r.lease.{host}-{pid}.ab12cd34.tmp")
    live = res / "runs" / f".y.json.{host}-{os.getpid()}.ab12cd34.tmp"
    for path in [*dead_files[1:], live]:
        path.write_bytes(b"half")

    proc = cli(["run", *TINY, f"paths.results_dir={res}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(p.exists() for p in dead_files)
    assert sorted(p.name for p in res.rglob("*.tmp")) == [live.name]
    assert not list((res / "claims").glob("*.lease"))  # the run's claim is released
