"""When pruning happens: one-shot, iterative rounds, gradual (Zhu & Gupta) or at initialization.

A schedule drives `run` (sweeplab.engine.pipeline.Run): it asks for masks, measures the pruned
model, hands it to the recovery method, and records one result per round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from sweeplab.engine.train import StepCallback
from sweeplab.errors import SweeplabError, check_fraction, check_positive

if TYPE_CHECKING:
    from sweeplab.engine.pipeline import Run
    from sweeplab.engine.train import LitClassifier


class Schedule:
    """Base: `run(run)` prunes and recovers, calling run.record() once per result row."""

    name = "schedule"

    def __init__(self, name: str | None = None) -> None:
        """Args: name: the config file's name (recorded by run.py, unused here)."""

    def run(self, run: Run) -> None:
        raise NotImplementedError


class OneShot(Schedule):
    """Prune to the target sparsity once, then recover."""

    name = "oneshot"

    def run(self, run: Run) -> None:
        masks = run.prune()
        before = run.evaluate()
        run.recovery.recover(run, masks)
        run.record(masks, before)


class AtInit(Schedule):
    """Prune the freshly initialized model (SNIP, GraSP, SynFlow), then train it sparse.

    Use with recovery=weight_rewind (train from these initial weights with the dense recipe).
    """

    name = "at_init"

    def run(self, run: Run) -> None:
        run.reset_to(run.snapshot(0))
        masks = run.prune()
        before = run.evaluate()
        run.recovery.recover(run, masks)
        run.record(masks, before)


class Iterative(Schedule):
    """k rounds of prune -> recover; one row per round, so one run gives the whole curve.

    Each round prunes the same fraction p of the surviving weights, p = 1 - (1 - s)^(1/k), so
    the last round lands exactly on the target sparsity s (layer_scale scales p per layer).

    Args:
        rounds: number of prune-recover rounds k.
    """

    name = "iterative"

    def __init__(self, rounds: int = 5, name: str | None = None) -> None:
        self.rounds = int(check_positive("schedule.rounds", rounds, integer=True))

    def run(self, run: Run) -> None:
        target = run.pruner.sparsity
        if target is None:
            raise SweeplabError("schedule=iterative needs pruning.sparsity (not threshold mode)")
        per_round = 1.0 - (1.0 - target) ** (1.0 / self.rounds)
        masks: dict[str, Tensor] | None = None
        for r in range(1, self.rounds + 1):
            cumulative = 1.0 - (1.0 - per_round) ** r
            masks = run.prune(existing=masks, rate=per_round)
            before = run.evaluate()
            run.recovery.recover(run, masks)
            last = r == self.rounds
            run.record(masks, before, round=r, requested=target if last else cumulative, final=last)


def cubic_sparsity(
    step: int, final: float, initial: float, start: int, n: int, every: int
) -> float:
    """Zhu & Gupta 2017: s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3, clamped.

    Args:
        step: optimizer step t.
        final: s_f.
        initial: s_i.
        start: t0, the first pruning step.
        n: number of pruning steps.
        every: dt, optimizer steps between mask updates.
    Returns:
        The sparsity the mask should have at step t.
    """
    if step < start:
        return initial
    progress = min((step - start) / (n * every), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


class GradualPruning(StepCallback):
    """Lightning callback: raises the mask's sparsity along the cubic curve every dt steps."""

    def __init__(self, run: Run, final: float, initial: float, start: int, n: int, every: int):
        self.run, self.final, self.initial = run, final, initial
        self.start, self.n, self.every = start, n, every
        self.masks: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        due = step >= self.start and (step - self.start) % self.every == 0
        if not due or step > self.start + self.n * self.every:
            return
        target = cubic_sparsity(step, self.final, self.initial, self.start, self.n, self.every)
        self.masks = self.run.prune(existing=self.masks, sparsity=target)
        self.history.append((step, target))


class Gradual(Schedule):
    """Prune while recovering (Zhu & Gupta 2017), counted in optimizer steps.

    Args:
        initial_sparsity: s_i at the first pruning step.
        start: t0 as a fraction of the recovery phase's steps.
        end: fraction of the recovery phase's steps by which s_f is reached (t0 + n*dt).
        frequency: dt, optimizer steps between mask updates.
    """

    name = "gradual"

    def __init__(
        self,
        initial_sparsity: float = 0.0,
        start: float = 0.0,
        end: float = 0.75,
        frequency: int = 10,
        name: str | None = None,
    ) -> None:
        self.initial = check_fraction("schedule.initial_sparsity", initial_sparsity, example="0.0")
        self.start = check_fraction("schedule.start", start, example="0.0")
        self.end = float(end)
        if not self.start < self.end <= 1.0:
            raise SweeplabError(f"schedule.end={end} must lie in (schedule.start, 1], e.g. 0.75")
        self.every = int(check_positive("schedule.frequency", frequency, integer=True))

    def run(self, run: Run) -> None:
        final = run.pruner.sparsity
        if final is None:
            raise SweeplabError("schedule=gradual needs pruning.sparsity (not threshold mode)")
        total = run.recovery.steps(run)
        if total is None:
            raise SweeplabError(
                f"schedule=gradual prunes during training; recovery={run.recovery.name} "
                "restarts it: use recovery=finetune, lr_rewind or distill"
            )
        t0 = round(self.start * total)
        n = max(1, (round(self.end * total) - t0) // self.every)
        callback = GradualPruning(run, final, self.initial, t0, n, self.every)
        if t0 == 0:
            callback.on_optimizer_step(None, 0)  # type: ignore[arg-type]  # s_i before step 1
        run.recovery.recover(run, callback.masks or run.prune(sparsity=0.0), callbacks=[callback])
        reached = callback.history[-1][1] if callback.history else 0.0
        if callback.masks is None or reached != final:
            raise SweeplabError(
                f"schedule=gradual reached only {reached} of {final} in {total} steps; "
                "lower schedule.frequency or raise finetune.epochs"
            )
        run.record(callback.masks, None)
