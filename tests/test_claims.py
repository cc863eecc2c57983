"""Claims: concurrent sweeps (or array tasks) over one results dir execute each run once.

The lease rules are tested in this process; take-over races in forked processes; the two
concurrent sweeps and the kill -9 are subprocesses (what only processes show)."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from conftest import rows_in
from sweeplab.engine import claims
from sweeplab.results import store

TINY = ["train.epochs=1", "finetune.epochs=1", "measure.latency=false"]
# 12 runs sharing one dense model.
TWELVE = ["pruning=global_magnitude,random", "pruning.sparsity=0.3,0.5,0.6,0.7,0.8,0.9"]


def _plant(results: Path, rid: str, host: str, pid: int, started: float, age: float) -> Path:
    path = claims.lease_path(results, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"host": host, "pid": pid, "started": started, "token": "t0"}
    path.write_text(json.dumps(holder))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def _ended_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def test_a_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    with claims.claim(tmp_path, "r") as mine:
        assert mine.ours and mine.path.exists()
        assert json.loads(mine.path.read_text())["pid"] == os.getpid()
        with claims.claim(tmp_path, "r") as other:  # a second claim, even from this process
            assert not other.ours and other.holder == mine.holder
    assert not mine.path.exists()
    with claims.claim(tmp_path, "r") as again:
        assert again.ours


def test_the_heartbeat_touches_the_lease(tmp_path: Path) -> None:
    with claims.claim(tmp_path, "r", heartbeat=0.02) as mine:
        os.utime(mine.path, (0, 0))
        time.sleep(0.3)
        assert time.time() - mine.path.stat().st_mtime < 5


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize(
    "case, taken",
    [
        ("ended_pid", True),
        ("live_pid", False),
        ("reused_pid", True),  # the pid runs, but started at another time: not the holder
        ("this_pid_not_holding", True),
        ("other_host_fresh", False),
        ("other_host_silent", True),
        ("damaged", True),
    ],
)
def test_a_stale_claim_is_taken_over_and_a_live_one_is_not(
    case: str, taken: bool, tmp_path: Path, sleeper: subprocess.Popen
) -> None:
    host = claims.socket.gethostname()
    started = psutil.Process(sleeper.pid).create_time()
    me = psutil.Process().create_time()
    if case == "ended_pid":
        path = _plant(tmp_path, "r", host, _ended_pid(), started, age=0)
    elif case == "live_pid":
        path = _plant(tmp_path, "r", host, sleeper.pid, started, age=10_000)
    elif case == "reused_pid":
        path = _plant(tmp_path, "r", host, sleeper.pid, started - 100, age=0)
    elif case == "this_pid_not_holding":
        path = _plant(tmp_path, "r", host, os.getpid(), me, age=0)
    elif case.startswith("other_host"):
        age = 10 if case == "other_host_fresh" else claims.STALE_AFTER_S + 10
        path = _plant(tmp_path, "r", "node-elsewhere", 1, 0.0, age=age)
    else:
        path = claims.lease_path(tmp_path, "r")
        path.parent.mkdir()
        path.write_text("{not json")
    before = path.read_text()
    with claims.claim(tmp_path, "r") as got:
        assert got.ours == taken
        assert (path.read_text() == before) != taken
    assert path.exists() != taken  # a taken-over lease is released; another's stays


def _contend(results: str, start: multiprocessing.synchronize.Event, out: str) -> None:
    start.wait()
    with claims.claim(results, "r") as got:
        Path(out).write_text(json.dumps(got.ours))
        time.sleep(0.5)  # hold it while the others try


def test_a_stale_claim_is_taken_over_by_exactly_one_of_many(tmp_path: Path) -> None:
    _plant(tmp_path, "r", claims.socket.gethostname(), _ended_pid(), 0.0, age=0)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_contend, args=(str(tmp_path), start, str(tmp_path / f"{i}.json")))
        for i in range(6)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ours = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(6)]
    assert ours.count(True) == 1
    assert not claims.lease_path(tmp_path, "r").exists()


def test_a_holder_never_removes_the_lease_of_whoever_took_it_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with claims.claim(tmp_path, "r") as mine:
        # Its heartbeat stopped too long (a suspended laptop): another host took it over.
        _plant(tmp_path, "r", "node-elsewhere", 1, 0.0, age=0)
    assert mine.path.exists()
    assert "was taken over by pid 1 on node-elsewhere" in capsys.readouterr().err


def _executions(output: str) -> Counter[str]:
    return Counter(re.findall(r"^(?:\[[^]]*\] )?run  (\w+):", output, flags=re.M))  # [i/N]


def test_two_concurrent_sweeps_execute_each_run_once(tmp_path: Path) -> None:
    res = tmp_path / "res"
    args = [sys.executable, "-m", "sweeplab", "run", "-m", *TWELVE, *TINY]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    procs = [
        subprocess.Popen([*args, f"paths.results_dir={res}"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    seconds = time.perf_counter() - start
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    executed = _executions(outs[0][0]) + _executions(outs[1][0])
    rows = [store.read_row(p) for p in rows_in(res)]
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert sorted(executed) == sorted(r["run_id"] for r in rows)
    assert set(executed.values()) == {1}, executed  # each run executed by one sweep only
    summaries = [re.search(r"sweep: (\d+) ok, (\d+) skipped.*", o).group(0) for o, _ in outs]
    ok = [int(re.search(r"(\d+) ok", s)[1]) for s in summaries]
    assert sum(ok) == 12
    for (out, _), summary, n in zip(outs, summaries, ok, strict=True):
        claimed = len(re.findall(r"^\[\d+/12[^]]*\] claimed ", out, flags=re.M))
        skipped = len(re.findall(r"^\[\d+/12[^]]*\] skip ", out, flags=re.M))
        assert summary.startswith(f"sweep: {n} ok, {skipped} skipped (already finished), 0 failed")
        assert (f"{claimed} claimed" in summary) == (claimed > 0) and n + claimed + skipped == 12
    assert not list((res / "claims").glob("*.lease")) and not list(res.rglob("*.tmp"))
    print(f"two sweeps: executions per run {dict(executed)}; {summaries}; {seconds:.1f} s")


def test_a_claim_left_by_a_killed_worker_is_taken_over(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    # 20 dense epochs: still running when the kill lands.
    args = ["run", "train.epochs=20", "finetune.epochs=1", "measure.latency=false"]
    args.append(f"paths.results_dir={res}")
    proc = subprocess.Popen([sys.executable, "-m", "sweeplab", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    end = time.monotonic() + 120
    while not list((res / "claims").glob("*.lease")):
        assert proc.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL
    (lease,) = (res / "claims").glob("*.lease")
    assert json.loads(lease.read_text())["pid"] == proc.pid

    again = cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"claim {lease.stem}: taken over (pid {proc.pid} on " in again.stdout
    assert f"run  {lease.stem}:" in again.stdout and len(rows_in(res)) == 1
    assert not lease.exists() and not list(res.rglob("*.tmp"))
