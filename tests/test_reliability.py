"""Scale-out that loses nothing: joblib and submitit launchers, the dense-model lock, kill -9
and Ctrl-C then the same command, corrupt checkpoints, Optuna searches resumed from rows.

Commands run in this process (the `cli` fixture) unless a process is what is tested: kill -9 and
Ctrl-C (`Sweep`, a subprocess in its own process group), writers that die (os._exit), and the
joblib sweep (`cli_subprocess`: loky's workers start from the parent's main module)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import CONF, FAST, compose, rows_in
from sweeplab.engine import cache
from sweeplab.engine.resources import threads_per_worker
from sweeplab.results import objectives, store

JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
METRICS = ("acc_dense_test", "acc_pruned_test", "acc_finetuned_test", "params_nonzero")


def rows(results: Path) -> list[dict]:
    return [store.read_row(p) for p in rows_in(results)]


def leftovers(results: Path) -> list[str]:
    """Temp files a writer left behind (a kill -9 mid-write may; nothing else should)."""
    return sorted(p.name for p in results.rglob("*.tmp"))


# -- the joblib pool after a sweep ----------------------------------------------------------


def test_sweeper_kills_the_idle_joblib_pool_and_loky_skips_per_job_gc() -> None:
    """After the last batch the sweeper kills joblib's idle workers (at exit each would tear down
    torch, ~1 s); psutil is installed, so loky checks a worker's memory instead of running a
    full gc.collect() after every job (0.15 s with torch loaded)."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import process_executor, reusable_executor

    from hydra_plugins.sweeplab_sweeper.sweeper import _release_pool

    assert process_executor._USE_PSUTIL, "psutil missing: loky would gc.collect() every job"
    pids = Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(4))
    assert os.getpid() not in pids
    workers = list(reusable_executor._executor._processes.values())
    assert workers and all(w.is_alive() for w in workers)
    _release_pool()
    # loky's manager thread reaps the killed workers itself, so Process.join() can return
    # before it has (waitpid: no child); poll instead.
    deadline = time.monotonic() + 30
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(w.is_alive() for w in workers)
    _release_pool()  # nothing left: a no-op


def test_orphan_temps_of_dead_writers_on_this_host_are_removed(tmp_path: Path) -> None:
    """What an aborted sweep cleans up: temp files (rows, checkpoints) of its killed workers,
    nothing else."""
    host = socket.gethostname()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead = tmp_path / f".a.json.{host}-{done.stdout.strip()}.x1y2z3.tmp"
    live = tmp_path / f".b.json.{host}-{os.getpid()}.x1y2z3.tmp"
    other_host = tmp_path / f".c.json.elsewhere-{done.stdout.strip()}.x1y2z3.tmp"
    row = tmp_path / "d.json"
    for p in (dead, live, other_host, row):
        p.write_text("{")
    assert store.remove_orphan_temps(tmp_path) == 1  # the live writer's file stays, counted
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other_host, row)
    )
    # A writer that dies inside atomic_write_text (before its rename) leaves a temp file the
    # cleanup recognizes.
    die = (
        "import os, sys; from sweeplab.results import store; os.replace = lambda *a: os._exit(9); "
        "store.atomic_write_text(__import__('pathlib').Path(sys.argv[1]) / 'e.json', '{}')"
    )
    assert subprocess.run([sys.executable, "-c", die, str(tmp_path)], check=False).returncode == 9
    assert len(list(tmp_path.glob(".e.json.*.tmp"))) == 1
    assert store.remove_orphan_temps(tmp_path) == 1 and not list(tmp_path.glob(".e.json.*"))
    # So does one that dies saving a dense checkpoint, in a folder below (cache/dense).
    die = (
        "import os, sys, torch; from pathlib import Path; from sweeplab.engine import cache; "
        "os.replace = lambda *a: os._exit(9); "
        "cache.save_state(Path(sys.argv[1]), {'w': torch.ones(3)}, owner=cache.owner('f', 'x'))"
    )
    dense = tmp_path / "cache" / "dense"
    dense.mkdir(parents=True)
    checkpoint = [sys.executable, "-c", die, str(dense / "f.pt")]
    assert subprocess.run(checkpoint, check=False).returncode == 9
    assert len(list(dense.glob(".f.pt.*.tmp"))) == 1
    assert store.remove_orphan_temps(tmp_path) == 1 and list(dense.iterdir()) == []


# -- threads per worker --------------------------------------------------------------------


def test_threads_per_worker_share_the_cores() -> None:
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert threads_per_worker({"_target_": joblib, "n_jobs": 2}, available=16) == 8
    assert threads_per_worker({"_target_": joblib, "n_jobs": -1}, available=16) == 1
    assert threads_per_worker({"_target_": joblib, "n_jobs": -2}, available=16) == 1
    assert threads_per_worker({"_target_": joblib, "n_jobs": 3}, available=2) == 1
    assert threads_per_worker({"_target_": slurm, "cpus_per_task": 4}, available=64) == 4
    assert threads_per_worker({"_target_": slurm, "cpus_per_task": None}) is None
    assert threads_per_worker({"_target_": basic}) is None and threads_per_worker(None) is None


# -- the dense cache: one training across processes, nothing corrupt is ever loaded ----------


def _train_slowly(marker: Path) -> Callable[[nn.Module], dict[str, float]]:
    def train(model: nn.Module) -> dict[str, float]:
        with marker.open("a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # long enough that the other worker asks while this one trains
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(0.5)
        return {"acc_test": 0.5}

    return train


def _worker(cache_dir: str, marker: str, out: str) -> None:
    model = nn.Linear(3, 2)
    info, source = cache.get_or_train(
        cache_dir, "d1", model, _train_slowly(Path(marker)), config_sha256="d1-sha"
    )
    Path(out).write_text(json.dumps([source, info, model.weight.sum().item()]))


def test_two_workers_train_a_dense_model_exactly_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")  # torch is imported already; no re-import cost
    marker = tmp_path / "trained_by"
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path), str(marker), str(tmp_path / f"{i}.json")))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    results = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]
    assert len(marker.read_text().split()) == 1  # one training
    assert sorted(r[0] for r in results) == ["cache", "trained"]
    assert results[0][1:] == results[1][1:] == [{"acc_test": 0.5}, 3.0]  # same weights read back
    assert leftovers(tmp_path) == []


def _damage(kind: str, path: Path) -> None:
    blob = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif kind == "flipped_byte":  # torch.load reads this without complaint; the digest does not
        damaged = bytearray(blob)
        damaged[len(damaged) // 2] ^= 0xFF
        path.write_bytes(bytes(damaged))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint" * 10)
    elif kind == "old_format":
        torch.save({"format": 1, "state_dict": {}, "info": {}}, path)
    elif kind == "other_architecture":
        owner = cache.owner("d", "d-sha")
        cache.save_state(path, nn.Linear(5, 2).state_dict(), {"acc_test": 0.9}, owner=owner)


@pytest.mark.parametrize(
    "kind", ["truncated", "flipped_byte", "empty", "garbage", "old_format", "other_architecture"]
)
def test_a_damaged_checkpoint_is_retrained_not_loaded(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    width = 256  # large enough that the middle byte of the file is tensor data
    calls = []

    def train(model: nn.Module) -> dict[str, float]:
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(1.0)
        return {"acc_test": 0.25}

    first = cache.get_or_train(tmp_path, "d", nn.Linear(width, 2), train, config_sha256="d-sha")
    assert first[1] == "trained"
    path = cache.checkpoint_path(tmp_path, "d")
    _damage(kind, path)
    (path.parent / f".{path.name}.abc.tmp").write_bytes(b"half")  # a writer killed mid-write
    model = nn.Linear(width, 2)
    info, source = cache.get_or_train(tmp_path, "d", model, train, config_sha256="d-sha")
    assert (source, len(calls), info) == ("trained", 2, {"acc_test": 0.25})
    assert "training it again" in capsys.readouterr().err
    assert bool((model.weight == 1.0).all()) and leftovers(tmp_path) == []
    # The retrained checkpoint is whole again.
    again = nn.Linear(width, 2)
    again_source = cache.get_or_train(tmp_path, "d", again, train, config_sha256="d-sha")[1]
    assert again_source == "cache" and len(calls) == 2
    assert torch.equal(again.weight, model.weight)


# -- launchers ---------------------------------------------------------------------------


def test_joblib_sweep_locks_the_dense_model_fails_alone_and_matches_serial(
    tmp_path: Path, cli, cli_subprocess
) -> None:
    # Jobs 0 and 1 start together on the two workers and need the same dense model; lr=1e9
    # diverges (failed rows); sparsity 1.5 is bad input (no row).
    sweep = ["train.lr=0.05,1e9", "pruning.sparsity=0.5,0.9,1.5", *FAST]
    proc = cli_subprocess(
        ["run", "-m", *JOBLIB, *sweep, f"paths.results_dir={tmp_path}/par"], tmp_path
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "sweep: 2 ok, 0 skipped (already finished), 4 failed" in proc.stderr
    assert proc.stderr.count("outside [0, 1)") >= 2 and "FloatingPointError" in proc.stderr
    got = rows(tmp_path / "par")
    ok = [r for r in got if r["status"] == "ok"]
    failed = [r for r in got if r["status"] == "failed"]
    assert sorted(r["sparsity_requested"] for r in ok) == [0.5, 0.9]
    assert sorted(r["dense_source"] for r in ok) == ["cache", "trained"]
    assert len(failed) == 2 and all("dense loss became nan" in r["error"] for r in failed)
    assert len(list((tmp_path / "par" / "cache" / "dense").glob("*.pt"))) == 1
    assert leftovers(tmp_path / "par") == []
    # Each run's first line says which of the 6 jobs it is, whichever worker ran it (the bad
    # inputs, jobs 3 and 6, are refused before it).
    started = re.findall(r"^\[(\d)/6[,\]].*\brun  ", proc.stdout, re.M)
    assert sorted(started) == ["1", "2", "4", "5"], proc.stdout
    launcher = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    per_worker = threads_per_worker({"_target_": launcher, "n_jobs": 2})
    assert {r["threads"] for r in got} == {per_worker}  # what each row trained with
    # A serial run of one cell (torch's default threads, not 1 per worker): the same bits.
    serial = cli(
        ["run", "pruning.sparsity=0.9", *FAST, f"paths.results_dir={tmp_path}/ser"], tmp_path
    )
    assert serial.returncode == 0, serial.stderr[-2000:]
    (one,) = rows(tmp_path / "ser")
    assert one["threads"] == torch.get_num_threads()
    (same,) = [r for r in ok if r["run_id"] == one["run_id"]]
    assert [one[k] for k in METRICS] == [same[k] for k in METRICS]


def test_submitit_local_sweep(tmp_path: Path, cli) -> None:
    args = ["run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]
    proc = cli(
        [*args, "pruning.sparsity=0.5,0.9", *FAST, f"paths.results_dir={tmp_path}/res"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep: 2 ok, 0 skipped (already finished), 0 failed" in proc.stdout
    assert sorted(r["status"] for r in rows(tmp_path / "res")) == ["ok", "ok"]


def test_slurm_example_submits_a_job_array(tmp_path: Path, cli) -> None:
    # No SLURM here: stand-ins for srun and sbatch; sbatch keeps the script and refuses.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\ncat "$1" > "$SBATCH_CAPTURE"\necho "sbatch: error: no SLURM" >&2\nexit 1\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    script = tmp_path / "sbatch.sh"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_CAPTURE": str(script)}
    plus = "" if "cluster" in (CONF / "config.yaml").read_text() else "+"
    args = ["run", "-m", f"{plus}cluster=slurm", "hydra.launcher.partition=gpu", "trainer=cpu"]
    proc = cli(
        [*args, "pruning.sparsity=0.5,0.9,0.95", f"paths.results_dir={tmp_path}/res"],
        tmp_path,
        env=env,
    )
    assert proc.returncode == 1 and "sbatch: error: no SLURM" in proc.stderr
    assert "run the same command again" in proc.stderr
    text = script.read_text()
    # 3 runs, at most 64 at once (submitit caps the % at the array size).
    for line in ("--array=0-2%3", "--partition=gpu", "--cpus-per-task=4", "--job-name=sweeplab"):
        assert f"#SBATCH {line}" in text, text
    assert "submitit.core._submit" in text


# -- kill -9 and Ctrl-C, then the same command ---------------------------------------------


class Sweep:
    """A `sweeplab run` subprocess in its own process group, its output collected live."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sweeplab", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches the whole group
            # As from a shell: Ctrl-C's default action, whatever this test process inherited
            # (a child that starts with SIGINT ignored never raises KeyboardInterrupt).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, ready: Callable[[], bool], timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, "".join(self.lines[-30:])
            assert time.monotonic() < end, "".join(self.lines[-30:])
            time.sleep(0.005)

    def count(self, prefix: str) -> int:
        """Lines that start with prefix, after a sweep's `[i/N] ` or `[i/N, sweep ETA ..] `."""
        return sum(re.sub(r"^\[[^]]*\] ", "", line).startswith(prefix) for line in self.lines)

    def signal(self, sig: int) -> int:
        os.killpg(self.proc.pid, sig)
        code = self.proc.wait(60)
        self._reader.join(10)
        return code


def check_intact(results: Path) -> list[dict]:
    """Every row parses and is ok; no temp file left; return the rows."""
    got = rows(results) if (results / "runs").exists() else []
    assert all(r["status"] == "ok" for r in got)
    assert leftovers(results) == []
    return got


def test_kill_9_at_several_points_then_the_same_command_runs_only_the_missing(
    tmp_path: Path, cli
) -> None:
    res = tmp_path / "res"
    # 20 dense epochs (about a second on digits): long enough to be caught training on an
    # idle machine, where 2 epochs finish before the kill lands.
    sweep = ["pruning.sparsity=0.5,0.7,0.8,0.9", "train.epochs=20", "finetune.epochs=1"]
    args = ["run", "-m", *sweep, f"paths.results_dir={res}"]
    dense = res / "cache" / "dense"

    def training_dense() -> bool:  # the lock is taken and no checkpoint exists yet
        return any(dense.glob("*.lock")) and not any(dense.glob("*.pt"))

    # 1. During dense training: no row, no checkpoint, no temp file.
    first = Sweep(args, tmp_path)
    first.wait_for(training_dense)
    assert first.signal(signal.SIGKILL) == -signal.SIGKILL
    assert check_intact(res) == [] and not any(dense.glob("*.pt"))

    # 2. Mid-sweep, right after a row was written.
    second = Sweep(args, tmp_path)
    second.wait_for(lambda: second.count("done ") >= 1)
    assert second.signal(signal.SIGKILL) == -signal.SIGKILL
    kept = len(check_intact(res))
    assert kept >= 1

    # 3. Inside a later run, the dense model already cached.
    third = Sweep(args, tmp_path)
    third.wait_for(lambda: third.count("run ") >= 1)
    time.sleep(0.5)
    assert third.signal(signal.SIGKILL) == -signal.SIGKILL
    assert third.count("skip ") == kept
    kept = len(check_intact(res))

    # 4. The same command completes: only the missing runs execute, once each.
    last = cli(args, tmp_path)
    assert last.returncode == 0, last.stderr[-3000:]
    assert last.stdout.count("skip ") == kept and last.stdout.count("done ") == 4 - kept
    final = check_intact(res)
    assert len(final) == 4 and len({r["run_id"] for r in final}) == 4
    assert sorted(r["sparsity_requested"] for r in final) == [0.5, 0.7, 0.8, 0.9]
    assert len(list(dense.glob("*.pt"))) == 1


@pytest.mark.parametrize("launcher", [[], JOBLIB], ids=["basic", "joblib"])
def test_ctrl_c_stops_cleanly_and_blames_no_run(launcher: list[str], tmp_path: Path) -> None:
    res = tmp_path / "res"
    # Finetuning long enough that the interrupt lands inside a run (inside Lightning's fit).
    args = ["run", "-m", *launcher, "pruning.sparsity=0.5,0.7,0.8,0.9"]
    args += ["train.epochs=2", "finetune.epochs=15", f"paths.results_dir={res}"]
    sweep = Sweep(args, tmp_path)
    sweep.wait_for(lambda: sweep.count("done ") >= 1)
    time.sleep(0.3)
    code = sweep.signal(signal.SIGINT)
    out = "".join(sweep.lines)
    assert code == 130, out[-3000:]
    assert "sweep: interrupted; finished runs are kept" in out and "Traceback" not in out
    kept = check_intact(res)  # no failed row: the interrupt is nobody's failure
    assert 1 <= len(kept) < 4


def test_an_error_raised_over_ctrl_c_is_an_interrupt_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in CI: Ctrl-C landed inside OmegaConf while a joblib worker built its model, and
    # OmegaConf's flag restore raised AttributeError over the KeyboardInterrupt. That run was
    # blamed: a failed row and a traceback. An error whose chain holds the interrupt is one.
    from sweeplab.engine import pipeline
    from sweeplab.engine import task as run

    def interrupted_build(spec: object) -> None:
        try:
            raise KeyboardInterrupt
        finally:
            raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")

    monkeypatch.setattr(pipeline, "run", interrupted_build)
    cfg = compose([*FAST, f"paths.results_dir={tmp_path}"])
    with pytest.raises(KeyboardInterrupt):
        run.execute(cfg)
    assert rows(tmp_path) == []

    # The same error without an interrupt is the run's failure, recorded as a row.
    def broken_build(spec: object) -> None:
        raise AttributeError("a real bug")

    monkeypatch.setattr(pipeline, "run", broken_build)
    with pytest.raises(AttributeError):
        run.execute(cfg)
    [row] = rows(tmp_path)
    assert row["status"] == "failed" and row["error"] == "AttributeError: a real bug"


class _SwallowsAnInterrupt:
    """A finalizer that Ctrl-C hit, like Lightning's Profiler.__del__ in a sweep."""

    def __del__(self) -> None:
        raise KeyboardInterrupt


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_an_interrupt_swallowed_by_a_finalizer_is_delivered_again_and_not_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sweeplab.engine import interrupts

    printed: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: printed.append(args.exc_type))
    # Inside a task: the interrupt comes back where it can be raised.
    with interrupts.task():
        with pytest.raises(KeyboardInterrupt):
            _SwallowsAnInterrupt()
            _spin(5)
            pytest.fail("the swallowed interrupt was lost")
        assert interrupts.caused_by_interrupt(RuntimeError("after the handler saw SIGINT"))
    assert not interrupts.caused_by_interrupt(RuntimeError("in the next task, a real error"))
    # Outside a task (a sweep exiting after its last run): swallowed without a traceback.
    _SwallowsAnInterrupt()
    _spin(0.2)

    class Broken:
        def __del__(self) -> None:
            raise ValueError("a real finalizer bug")

    Broken()  # other errors still reach the hook installed before
    assert printed == [ValueError]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], JOBLIB], ids=["basic", "joblib"])
def test_ctrl_c_at_random_moments_of_a_sweep_never_leaves_a_trace(
    launcher: list[str], tmp_path: Path
) -> None:
    """The Ctrl-C test above, at 25 moments spread over a sweep's life: dense training and
    saving, model building, finetuning, finished runs, exit. Each flake fixed in
    sweeplab.engine.interrupts and store.atomic_write was found by this loop (joblib), 1 to 3 times
    in 25 or 30 moments."""
    moments = random.Random(0)
    problems = []
    for i in range(25):
        res = tmp_path / f"res{i}"
        args = ["run", "-m", *launcher, "pruning.sparsity=0.5,0.7,0.8,0.9"]
        sweep = Sweep([*args, "train.epochs=2", "finetune.epochs=3", f"paths.results_dir={res}"],
                      tmp_path)  # fmt: skip
        started = moments.randint(1, 4)
        sweep.wait_for(lambda s=sweep, n=started: s.count("run ") >= n or s.proc.poll() is not None)
        time.sleep(moments.uniform(0, 0.4))
        code = sweep.signal(signal.SIGINT)
        out = "".join(sweep.lines)
        got = rows(res) if (res / "runs").exists() else []
        bad = [r["run_id"] for r in got if r["status"] != "ok"] + leftovers(res)
        # 0: the sweep had finished; -SIGINT: it was exiting, Python's handlers already reset
        # (the shell shows 130 for both interrupted codes).
        if code not in (0, 130, -signal.SIGINT) or "Traceback" in out or "Exception ig" in out:
            problems.append(f"moment {i}: exit {code}\n{out[-2000:]}")
        elif bad:
            problems.append(f"moment {i}: left {bad}")
    assert not problems, "\n".join(problems)


def test_ctrl_c_in_a_single_run_exits_130(tmp_path: Path) -> None:
    res = tmp_path / "res"
    run = Sweep(
        ["run", "train.epochs=2", "finetune.epochs=200", f"paths.results_dir={res}"], tmp_path
    )
    run.wait_for(lambda: any((res / "cache" / "dense").glob("*.pt")))
    time.sleep(0.3)
    assert run.signal(signal.SIGINT) == 130
    assert "sweeplab: interrupted; finished runs are kept" in "".join(run.lines)
    assert check_intact(res) == []


# -- Optuna ------------------------------------------------------------------------------


def search(name: str, trials: int, tmp_path: Path, cli) -> Any:
    """Run the search conf/hparams_search/<name>.yaml with n_trials, results in tmp_path/res.

    With `hparams_search: grid` in config.yaml's defaults the group switches the sweeper
    itself (`sweeplab run`, in this process); before that change, the sweeper is chosen on the
    command line and the file is appended (through engine.task in a subprocess, since
    `sweeplab run` checks hydra/sweeper against conf/).
    """
    overrides = [f"hydra.sweeper.n_trials={trials}", *FAST, f"paths.results_dir={tmp_path}/res"]
    if "hparams_search" in (CONF / "config.yaml").read_text():
        return cli(["run", "-m", f"hparams_search={name}", *overrides], tmp_path)
    cmd = [sys.executable, "-m", "sweeplab.engine.task", "-m", "hydra/sweeper=optuna"]
    cmd += [f"+hparams_search={name}", *overrides]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_optuna_pareto_search_runs_trials_as_rows_and_resumes(tmp_path: Path, cli) -> None:
    first = search("pareto", 4, tmp_path, cli)
    assert first.returncode == 0, first.stderr[-3000:]
    trials = rows(tmp_path / "res")
    assert len(trials) == 4 and {r["status"] for r in trials} == {"ok"}
    assert {r["strategy"] for r in trials} <= {"global_magnitude", "layer_magnitude", "random"}
    assert all(0.5 <= r["sparsity_requested"] <= 0.99 for r in trials)
    (result,) = (tmp_path / "res" / "hydra").glob("*/optimization_results.yaml")
    front = result.read_text()
    assert "solutions:" in front
    # The same command: the seeded sampler proposes the same trials; each is skipped and
    # reports its row's objectives, so the study and its front come out the same.
    again = search("pareto", 4, tmp_path, cli)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skip ") == 4 and "done " not in again.stdout
    fronts = sorted((tmp_path / "res" / "hydra").glob("*/optimization_results.yaml"))
    assert len(fronts) == 2 and fronts[0].read_text() == fronts[1].read_text() == front


def test_optuna_max_sparsity_search_reports_the_best_row(tmp_path: Path, cli) -> None:
    proc = search("max_sparsity", 2, tmp_path, cli)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "res")
    assert len(trials) == 2 and {r["strategy"] for r in trials} == {"global_magnitude"}
    (result,) = (tmp_path / "res" / "hydra").glob("*/optimization_results.yaml")
    best = OmegaConf.load(result)
    objective = [objectives.objective_values(r, ["sparsity_within_drop"], 0.01)[0] for r in trials]
    assert best.best_value == max(objective) and "pruning.sparsity" in best.best_params
