"""How a pruned model recovers: finetune, lr/weight rewinding, retraining, distillation, sharing.

Each method trains the RunContext's model in place with its masks attached, so pruned weights
stay zero, and returns the metrics only it knows (e.g. acc_reinit_test) for the result row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import pytorch_lightning as pl

from sweeplab.engine.context import Masks, RunContext
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.snapshots import state_of
from sweeplab.engine.train import Distillation
from sweeplab.errors import SweeplabError, check_positive

Metrics = dict[str, object]  # metric name -> value, merged into the result row


class Recovery:
    """Base: `recover(ctx, masks, callbacks)` trains ctx.model with its masks attached.

    Declarations (checked by sweeplab.engine.task before any training):
        resets_dense_weights: loads weights of the dense architecture (a snapshot or a fresh
            initialization) into the pruned model, so it cannot follow structured pruning.
        needs_masks: acts on the masks themselves, so it needs an unstructured pruner.
        restarts_training: trains from a reset, not from the pruned weights (steps() is
            None), so no schedule can prune during its training.
    """

    name = "recovery"
    resets_dense_weights: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = False
    restarts_training: ClassVar[bool] = False

    def __init__(self, name: str | None = None) -> None:
        """Args: name: the config file's name (recorded by task.py, unused here)."""

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        """Train the pruned model; returns this method's own metrics (often none)."""
        raise NotImplementedError

    def check_run(self, ctx: RunContext) -> None:
        """Raise SweeplabError if this recovery cannot run on ctx's data; called once the data
        is loaded, before dense training."""

    def steps(self, ctx: RunContext) -> int | None:
        """Optimizer steps of the training that continues from the pruned weights, if any."""
        return ctx.finetune.epochs * ctx.steps_per_epoch(ctx.finetune.batch_size)


class Finetune(Recovery):
    """Keep training the surviving weights with the `finetune` settings."""

    name = "finetune"

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        ctx.fit(ctx.finetune, "finetune", callbacks=callbacks)
        return {}


class LrRewind(Recovery):
    """Renda et al. 2020: retrain for finetune.epochs with the tail of training's lr curve.

    The optimizer settings are the dense training's; the cosine curve is replayed from the
    point that leaves finetune.epochs of it, so the lr rewinds to what it was then.
    """

    name = "lr_rewind"

    def _cfg(self, ctx: RunContext) -> TrainConfig:
        return replace(ctx.train, epochs=ctx.finetune.epochs)

    def steps(self, ctx: RunContext) -> int:
        return self._cfg(ctx).epochs * ctx.steps_per_epoch(ctx.train.batch_size)

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        train = ctx.train
        total = train.epochs * ctx.steps_per_epoch(train.batch_size)
        window = (max(total - self.steps(ctx), 0), total)
        ctx.fit(self._cfg(ctx), "finetune", lr_window=window, callbacks=callbacks)
        return {}


class WeightRewind(Recovery):
    """Lottery ticket (Frankle & Carbin 2019; Frankle et al. 2020 for k > 0).

    Surviving weights go back to their values at optimizer step k of dense training (k = 0:
    initialization), then train with the dense recipe from step k to its end.

    With control, each round also trains the paper's control: the same mask on a random
    re-initialization (a draw from the run's own control stream), with the same recipe;
    its accuracy goes into the row as acc_reinit_test / acc_reinit_val, and the next round
    goes on from the rewound ticket, not from the control.

    Args:
        step: k, in optimizer steps of dense training.
        control: also train and measure the random re-initialization of every round's mask.
    """

    name = "weight_rewind"
    resets_dense_weights = True
    restarts_training = True

    def __init__(self, step: int = 0, control: bool = False, name: str | None = None) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise SweeplabError(f"recovery.step={step!r} must be an integer >= 0, e.g. 0")
        if not isinstance(control, bool):
            raise SweeplabError(f"recovery.control={control!r} must be true or false")
        self.step, self.control = step, control

    def steps(self, ctx: RunContext) -> None:
        return None

    def check_run(self, ctx: RunContext) -> None:
        total = ctx.train.epochs * ctx.steps_per_epoch(ctx.train.batch_size)
        if self.step >= total:
            raise SweeplabError(
                f"recovery.step={self.step} is not before the end of dense training ({total} "
                f"optimizer steps); use recovery.step=0 (initialization) up to {total - 1}"
            )

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        train = ctx.train
        total = train.epochs * ctx.steps_per_epoch(train.batch_size)
        self.check_run(ctx)
        ctx.reset_to(ctx.snapshot(self.step))
        # Exactly the T - k steps dense training had left, the lr curve resuming at step k and
        # ending where dense training's ended (open_lth's start_step).
        left = total - self.step
        ctx.fit(train, "retrain", lr_window=(self.step, total), steps=left)
        if not self.control:
            return {}
        ticket = state_of(ctx.model)
        ctx.reset_to(ctx.fresh_init("control"))
        ctx.fit(train, "control", lr_window=(self.step, total), steps=left)
        test, val = ctx.evaluate()
        ctx.reset_to(ticket)
        return {"acc_reinit_test": test, "acc_reinit_val": val}


class Retrain(Recovery):
    """Random re-initialization that keeps the mask, then the dense recipe (LTH's control)."""

    name = "retrain"
    resets_dense_weights = True
    restarts_training = True

    def steps(self, ctx: RunContext) -> None:
        return None

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        ctx.reset_to(ctx.fresh_init("control"))
        ctx.fit(ctx.train, "retrain")
        return {}


class Distill(Recovery):
    """Finetune against the dense model as teacher: alpha * CE + (1 - alpha) * T^2 * KL.

    Args:
        alpha: weight of the hard-label cross-entropy.
        temperature: softmax temperature T of both teacher and student.
    """

    name = "distill"

    def __init__(self, alpha: float = 0.5, temperature: float = 4.0, name: str | None = None):
        self.alpha = float(alpha)
        if not 0.0 <= self.alpha <= 1.0:
            raise SweeplabError(f"recovery.alpha={alpha} must lie in [0, 1], e.g. 0.5")
        self.temperature = float(check_positive("recovery.temperature", temperature, example="4"))

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        teacher = ctx.dense_model().eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        distill = Distillation(teacher, self.alpha, self.temperature)
        ctx.fit(ctx.finetune, "finetune", distill=distill, callbacks=callbacks)
        return {}
