"""The stacked launch's coordinator (engine/stacking.py): turns, groups, locks, failures."""

from __future__ import annotations

import threading
import time

import pytest

from sweeplab.engine import stacking
from sweeplab.engine.stacking import Coordinator, FitRequest


def launch(jobs, size: int = 32, train=None):
    """Run `jobs` (callables) under a coordinator; returns (results, groups trained)."""
    groups: list[list[str]] = []

    def train_group(requests: list[FitRequest]) -> None:
        groups.append([r.kwargs["name"] for r in requests])
        for r in requests:
            if train is not None:
                train(r)
            r.info = {"stack_size": len(requests)}

    c = Coordinator(train_group, lambda requests: size)
    workers = [c.add(job) for job in jobs]
    c.run()
    return [w.result for w in workers], groups


def fitter(name: str, key: str, log: list[str] | None = None):
    def job() -> object:
        c = stacking.current()
        assert c is not None
        if log is not None:
            log.append(f"{name} start")
        info = c.fit(FitRequest({"name": name}, (key,)))
        if log is not None:
            log.append(f"{name} end")
        return info["stack_size"]

    return job


def test_fits_of_one_key_train_together_once_every_job_waits() -> None:
    log: list[str] = []
    jobs = [fitter(f"j{i}", "a" if i < 3 else "b", log) for i in range(5)]
    sizes, groups = launch(jobs)
    assert sizes == [3, 3, 3, 2, 2]
    assert sorted(map(sorted, groups)) == [["j0", "j1", "j2"], ["j3", "j4"]]
    assert log[:5] == [f"j{i} start" for i in range(5)]  # every job reached its fit first


def test_groups_are_split_at_the_size_limit() -> None:
    sizes, groups = launch([fitter(f"j{i}", "a") for i in range(5)], size=2)
    assert [len(g) for g in groups] == [2, 2, 1] and sorted(sizes) == [1, 2, 2, 2, 2]


def test_one_job_runs_at_a_time() -> None:
    running, most = [0], [0]
    lock = threading.Lock()

    def job() -> None:
        for _ in range(3):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.002)  # another job running now would be counted
            with lock:
                running[0] -= 1
            stacking.current().fit(FitRequest({"name": "x"}, ("k",)))  # type: ignore[union-attr]

    launch([job] * 4)
    assert most[0] == 1


def test_exclusive_sections_wait_without_blocking_the_holder() -> None:
    order: list[str] = []

    def holder() -> None:
        with stacking.exclusive("dense.pt"):
            order.append("holder in")
            stacking.current().fit(FitRequest({"name": "holder"}, ("k",)))  # type: ignore[union-attr]
            order.append("holder out")

    def waiter() -> None:
        with stacking.exclusive("dense.pt"):
            order.append("waiter in")

    launch([holder, waiter])
    assert order == ["holder in", "holder out", "waiter in"]


def test_a_variants_error_reaches_only_its_job() -> None:
    def train(r: FitRequest) -> None:
        if r.kwargs["name"] == "bad":
            r.error = FloatingPointError("finetune loss became nan")

    def job(name: str):
        def run() -> str:
            try:
                stacking.current().fit(FitRequest({"name": name}, ("k",)))  # type: ignore[union-attr]
            except FloatingPointError as e:
                return f"failed: {e}"
            return "ok"

        return run

    results, _ = launch([job("good"), job("bad"), job("good2")], train=train)
    assert results == ["ok", "failed: finetune loss became nan", "ok"]


def test_outside_a_launch_nothing_changes() -> None:
    assert stacking.current() is None and stacking.paused() == 0.0
    with stacking.exclusive("x"):
        pass
    assert stacking.shared("k", lambda: 5) == 5


def test_jobs_waiting_on_each_other_are_named() -> None:
    c = Coordinator(lambda r: None, lambda r: 1)

    def stuck() -> None:
        c.held.add("never")  # a key nobody releases
        with stacking.exclusive("never"):
            pass

    c.add(stuck)
    with pytest.raises(RuntimeError, match="wait on each other"):
        c.run()
