"""Many runs in one process, their fits trained together (hydra/launcher=stacked).

Each job of a batch runs its own unchanged task (compose, claim, dense model, schedule,
recovery, measure, row) in its own thread, but only one thread runs at a time: the turn passes
when a thread reaches a fit, waits for a lock another job holds, or ends. Once no thread can go
on, the coordinator trains the waiting fits that share a recipe, data and architecture as one
stacked model (engine/stacked_fit.py) and hands each thread its own trained model back. A fit
that cannot be stacked runs in its own thread as it always does. Dense training, recovery fits
and every round of an iterative schedule are fits, so each stage stacks in turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_local = threading.local()


@dataclass
class FitRequest:
    """One thread's fit (train.fit's arguments) waiting to be trained with others."""

    kwargs: dict[str, Any]
    key: tuple  # fits with equal keys may train as one stacked model
    info: dict[str, object] = field(default_factory=dict)  # row fields the fit adds
    error: BaseException | None = None  # the variant's own failure (its loss became NaN)
    alone: str | None = None  # set when it must train by itself after all: why


class Worker:
    """One job's thread and where it stands: new, ready, fit, blocked or done."""

    def __init__(self, coordinator: Coordinator, target: Callable[[], Any]) -> None:
        self.coordinator, self.target = coordinator, target
        self.state = "new"
        self.request: FitRequest | None = None
        self.blocked_at = -1  # the coordinator's event count when it blocked
        self.paused = 0.0  # seconds spent waiting for its turn
        self.result: Any = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        c = self.coordinator
        with c.cond:
            c.cond.wait_for(lambda: c.turn is self)
        _local.worker = self
        try:
            self.result = self.target()
        finally:
            with c.cond:
                self.state, c.turn = "done", None
                c.events += 1
                c.cond.notify_all()


class Coordinator:
    """Passes the turn among workers; trains their waiting fits in groups.

    Args:
        train_group: trains a list of FitRequests with equal keys together, setting each
            request's info and error (or `alone`, to fall back to training it by itself).
        group_size: the most fits of one key to train together.
        keep: called in a worker's thread as it gives up its turn; returns a function that
            restores process-wide state other jobs may change meanwhile (Hydra's config).
    """

    def __init__(
        self,
        train_group: Callable[[list[FitRequest]], None],
        group_size: Callable[[list[FitRequest]], int],
        keep: Callable[[], Callable[[], None]] | None = None,
    ) -> None:
        self.cond = threading.Condition()
        self.turn: Worker | None = None  # None: the coordinator's turn
        self.workers: list[Worker] = []
        self.train_group, self.group_size, self.keep = train_group, group_size, keep
        self.events = 0  # fits trained and workers finished: what may unblock a lock wait
        self.held: set[str] = set()  # keys of exclusive() sections some worker is inside
        self.memo: dict[object, Any] = {}  # shared(): what jobs of this launch load once

    def add(self, target: Callable[[], Any]) -> Worker:
        worker = Worker(self, target)
        self.workers.append(worker)
        return worker

    # -- a worker's side ------------------------------------------------------------------
    def pause(self, state: str) -> None:
        """Give the turn back in `state`; return when it is this worker's turn again."""
        worker: Worker = _local.worker
        restore = self.keep() if self.keep else None
        start = time.perf_counter()
        with self.cond:
            worker.state, self.turn = state, None
            worker.blocked_at = self.events
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn is worker)
        worker.paused += time.perf_counter() - start
        if restore is not None:
            restore()

    def fit(self, request: FitRequest) -> dict[str, object]:
        """Wait until the request is trained (with others); its row fields, or its error."""
        worker: Worker = _local.worker
        worker.request = request
        self.pause("fit")
        worker.request = None
        if request.error is not None:
            raise request.error
        return request.info

    # -- the coordinator's side -----------------------------------------------------------
    def run(self) -> None:
        """Run every worker to its end, training their fits in groups; in the caller's thread."""
        for worker in self.workers:
            worker.thread.start()
        while True:
            with self.cond:
                ready = [
                    w for w in self.workers
                    if w.state in ("new", "ready")
                    or (w.state == "blocked" and w.blocked_at < self.events)
                ]  # fmt: skip
                fits = [w for w in self.workers if w.state == "fit"]
            if ready:
                self._give(ready[0])
                continue
            if not fits:
                blocked = [w for w in self.workers if w.state == "blocked"]
                if not blocked:
                    return
                raise RuntimeError(f"{len(blocked)} stacked jobs wait on each other's locks")
            self._train(fits)

    def _give(self, worker: Worker) -> None:
        with self.cond:
            worker.state, self.turn = "running", worker
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn is None)

    def _train(self, waiting: list[Worker]) -> None:
        """Train the largest group of equal keys (at most group_size of them) at once."""
        groups: dict[tuple, list[Worker]] = {}
        for w in waiting:
            assert w.request is not None
            groups.setdefault(w.request.key, []).append(w)
        chosen = max(groups.values(), key=len)
        requests = [w.request for w in chosen if w.request is not None]
        size = max(1, min(len(requests), self.group_size(requests)))
        chosen, requests = chosen[:size], requests[:size]
        self.train_group(requests)
        with self.cond:
            for w in chosen:
                w.state = "ready"
            self.events += 1


def paused() -> float:
    """Seconds the calling job has waited for its turn so far (0 outside a stacked launch):
    phase timings leave them out."""
    worker = getattr(_local, "worker", None)
    return worker.paused if worker is not None else 0.0


def current() -> Coordinator | None:
    """The coordinator of the calling thread's job, or None outside a stacked launch."""
    worker = getattr(_local, "worker", None)
    return worker.coordinator if worker is not None else None


@contextmanager
def exclusive(key: str) -> Iterator[None]:
    """Hold `key` against the other jobs of this process (a no-op outside a stacked launch).

    Jobs that share a dense model take its file lock in turn; a job that found it held inside
    this process would block its thread while the holder waits for its turn, so it waits here,
    giving up its turn, instead.
    """
    c = current()
    if c is None:
        yield
        return
    while key in c.held:
        c.pause("blocked")
    c.held.add(key)
    try:
        yield
    finally:
        c.held.discard(key)
        c.events += 1  # a job waiting for the key may go on


def shared(key: object, make: Callable[[], Any]) -> Any:
    """make(), once per key among the jobs of a stacked launch (each call outside one).

    Jobs that load the same data get the same tensors: their fits can then be stacked, and
    the data is in memory once.
    """
    c = current()
    if c is None:
        return make()
    if key not in c.memo:
        c.memo[key] = make()
    return c.memo[key]
