"""When pruning happens: one-shot, iterative rounds, gradual (Zhu & Gupta) or at initialization.

A schedule owns the sparsity: it decides the absolute target of every pruning step, asks the
RunContext to prune to it, hands the model to the recovery, and yields one Outcome per result
row (the pipeline measures and writes it before the schedule goes on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from sweeplab.engine.context import Outcome, RunContext
from sweeplab.engine.recovery import Recovery
from sweeplab.engine.train import StepCallback
from sweeplab.errors import SweeplabError, check_fraction, check_positive
from sweeplab.pruning.budget import Target

if TYPE_CHECKING:
    from sweeplab.engine.train import LitClassifier


class Schedule:
    """Base: `run(ctx, recovery)` prunes and recovers, yielding one Outcome per result row.

    Declarations (checked by sweeplab.engine.task before any training):
        single_shot: prunes the trained dense model once and keeps no masks over time, so a
            pruner that returns a new, smaller model can run under it.
        needs_target: needs pruning.sparsity to spread over its steps (no threshold mode).
        prunes_during_recovery: prunes inside the recovery's training, which must continue
            from the pruned weights (not restart).
    """

    name = "schedule"
    single_shot: ClassVar[bool] = False
    needs_target: ClassVar[bool] = False
    prunes_during_recovery: ClassVar[bool] = False

    def __init__(self, name: str | None = None) -> None:
        """Args: name: the config file's name (recorded by task.py, unused here)."""

    def check(self, sparsity: float | None) -> None:
        """Raise SweeplabError if this schedule cannot reach `sparsity` (before any work)."""

    def check_run(self, ctx: RunContext, recovery: Recovery) -> None:
        """Raise SweeplabError if this schedule cannot run on ctx's data with `recovery`;
        called once the data is loaded, before dense training."""

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        raise NotImplementedError


def _target(ctx: RunContext) -> Target | None:
    """One step to pruning.sparsity, or None where the pruner sets its own amount."""
    return None if ctx.sparsity is None else Target.oneshot(ctx.sparsity)


def _final_target(ctx: RunContext, schedule: str) -> float:
    if ctx.sparsity is None:
        raise SweeplabError(f"schedule={schedule} needs pruning.sparsity (not threshold mode)")
    return ctx.sparsity


class OneShot(Schedule):
    """Prune to the target sparsity once, then recover."""

    name = "oneshot"
    single_shot = True

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        target = _target(ctx)
        masks = ctx.prune(target)
        before = ctx.evaluate()
        extra = recovery.recover(ctx, masks)
        yield Outcome(masks, before, extra, requested=None if target is None else target.sparsity)


class AtInit(OneShot):
    """Prune the freshly initialized model (SNIP, GraSP, SynFlow), then train it sparse.

    Use with recovery=weight_rewind (train from these initial weights with the dense recipe).
    It prunes the initialization, not the trained model, so it is not single-shot in the
    sense structured pruners need.
    """

    name = "at_init"
    single_shot = False

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        ctx.reset_to(ctx.snapshot(0))
        yield from super().run(ctx, recovery)


class Iterative(Schedule):
    """k rounds of prune -> recover; one row per round, so one run gives the whole curve.

    Round r's target is 1 - (1 - p)^r with p = 1 - (1 - s)^(1/k): each round prunes the same
    fraction p of the surviving weights, and the last round lands exactly on the target
    sparsity s (layer_scale scales p per layer).

    Args:
        rounds: number of prune-recover rounds k.
    """

    name = "iterative"
    needs_target = True

    def __init__(self, rounds: int = 5, name: str | None = None) -> None:
        self.rounds = int(check_positive("schedule.rounds", rounds, integer=True, example="5"))

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        targets = Target.geometric(_final_target(ctx, self.name), self.rounds)
        masks: dict[str, Tensor] | None = None
        for r, target in enumerate(targets, start=1):
            masks = ctx.prune(target, existing=masks)
            before = ctx.evaluate()
            extra = recovery.recover(ctx, masks)
            last = r == self.rounds
            yield Outcome(masks, before, extra, round=r, requested=target.sparsity, final=last)


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

    def __init__(
        self, ctx: RunContext, final: float, initial: float, start: int, n: int, every: int
    ) -> None:
        self.ctx, self.final, self.initial = ctx, final, initial
        self.start, self.n, self.every = start, n, every
        self.masks: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        due = step >= self.start and (step - self.start) % self.every == 0
        if not due or step > self.start + self.n * self.every:
            return
        target = cubic_sparsity(step, self.final, self.initial, self.start, self.n, self.every)
        self.masks = self.ctx.prune(Target(target), existing=self.masks)
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
    needs_target = True
    prunes_during_recovery = True

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

    def _plan(self, total: int) -> tuple[int, int]:
        """(t0, n): the first pruning step and the number of mask updates in `total` steps."""
        t0 = round(self.start * total)
        return t0, max(1, (round(self.end * total) - t0) // self.every)

    def check(self, sparsity: float | None) -> None:
        if sparsity is not None and self.initial > sparsity:
            raise SweeplabError(
                f"schedule.initial_sparsity={self.initial} is above pruning.sparsity={sparsity}; "
                f"gradual pruning only adds zeros: use schedule.initial_sparsity<={sparsity}"
            )

    def check_run(self, ctx: RunContext, recovery: Recovery) -> None:
        total = recovery.steps(ctx)
        if total is None:  # compatibility.check_combination has refused it
            return
        if total == 0:
            raise SweeplabError(
                f"schedule=gradual prunes while recovery trains, and finetune.epochs="
                f"{ctx.finetune.epochs} trains 0 steps; raise it, e.g. finetune.epochs=5"
            )
        t0, n = self._plan(total)
        if t0 + n * self.every > total:
            fix = (
                f"lower schedule.frequency (at most {total - t0}) or raise finetune.epochs"
                if total > t0
                else "lower schedule.start or raise finetune.epochs"
            )
            raise SweeplabError(
                f"schedule.frequency={self.every}: schedule=gradual reaches pruning.sparsity at "
                f"step {t0 + n * self.every} but recovery trains {total} steps; {fix}"
            )

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        final = _final_target(ctx, self.name)
        total = recovery.steps(ctx)
        if total is None:
            raise SweeplabError(refusal(self.name, recovery.name))
        t0, n = self._plan(total)
        callback = GradualPruning(ctx, final, self.initial, t0, n, self.every)
        if t0 == 0:
            callback.on_optimizer_step(None, 0)  # type: ignore[arg-type]  # s_i before step 1
        masks = callback.masks or ctx.prune(Target(0.0))
        extra = recovery.recover(ctx, masks, callbacks=[callback])
        reached = callback.history[-1][1] if callback.history else 0.0
        if callback.masks is None or reached != final:
            raise SweeplabError(
                f"schedule=gradual reached only {reached} of {final} in {total} steps; "
                "lower schedule.frequency or raise finetune.epochs"
            )
        yield Outcome(callback.masks, None, extra, requested=final)


def refusal(schedule: str, recovery: str) -> str:
    """The error for a recovery that restarts training under a schedule that prunes in it."""
    return (
        f"schedule={schedule} prunes during training; recovery={recovery} "
        "restarts it: use recovery=finetune, lr_rewind or distill"
    )
