"""One minibatch's backward, and the optimizer step, under manual optimization.

LitClassifier (engine/train.py) trains with manual optimization, so Lightning's own gradient
clipping and accumulation are unavailable (it refuses both); this class does them:

- fp32: loss.backward() and the raw torch optimizer, no Lightning hook per step (the fast path
  bench/throughput.py measures). Other precisions: manual_backward (the precision plugin scales
  the loss for 16-mixed) and the LightningOptimizer's step (it unscales, calls
  on_before_optimizer_step, where clipping happens on unscaled gradients, then steps through
  the GradScaler).
- Clipping: `LightningModule.clip_gradients` (norm or value) between backward and step.
- Accumulation over k minibatches: each loss is divided by k, gradients add up over k
  backward passes, then one optimizer step. As in Lightning's own accumulation, groups start
  afresh each epoch: an epoch's last group steps with what it has (k-1 minibatches or fewer),
  as does a fit's last group (its step count, or max_time, ends it inside an epoch), so
  validation always sees every minibatch trained. The lr schedule still counts minibatches:
  after a step it advances by the minibatches that step consumed, so a schedule keeps its
  length in epochs and each step uses the lr of its group's first minibatch. With k = 2 at
  batch b, SGD follows the weights of batch 2b at the same lr (constant or cosine schedule;
  the epoch must split into whole groups: otherwise its last group is one short batch, whose
  loss is still divided by k).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from sweeplab.engine.trainer_settings import TrainerSettings


class Stepper(pl.Callback):
    """Backward per minibatch; clip, optimizer step and lr step once per accumulated group.

    The module calls `chunk` and `minibatch`; as a callback of the fit's Trainer it hears the
    fit start, the precision plugin's moment to clip, and the fit's end.
    """

    def __init__(self, settings: TrainerSettings) -> None:
        self.settings = settings
        self.every = settings.accumulate_grad_batches
        self.clip = settings.gradient_clip_val
        self.pending = 0  # minibatches whose gradients wait for a step
        self.total = 0  # minibatches in the fit
        self.per_epoch = 1.0  # minibatches per epoch
        self.raw = True
        self._module: pl.LightningModule | None = None
        self._opt: Any = None
        self._sched: Any = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """At the start of a fit: fp32 or the precision plugin's path."""
        self._module = module
        self.raw = str(module.trainer.precision) in ("32-true", "32")
        self.pending = 0
        self.total = int(getattr(module, "total_steps", 0))
        self.per_epoch = float(getattr(module, "steps_per_epoch", 1.0))

    def chunk(self, module: pl.LightningModule) -> None:
        """Before each Lightning batch: the optimizer (raw, or Lightning's) and the scheduler."""
        self._opt = module.optimizers(use_pl_optimizer=not self.raw)
        self._sched = module.lr_schedulers()

    def minibatch(self, loss: Tensor, number: int) -> None:
        """Backward of minibatch `number` (1-based) of the fit; step when its group is complete
        or it ends an epoch or the fit."""
        module = self._module
        assert module is not None
        if self.pending == 0:
            self._opt.zero_grad(set_to_none=True)
        if self.every > 1:
            loss = loss / self.every
        if self.raw:
            loss.backward()
        else:
            module.manual_backward(loss)
        self.pending += 1
        ends_epoch = number % self.per_epoch < 1  # (float: steps_per_epoch may be total / epochs)
        if self.pending == self.every or number >= self.total or ends_epoch:
            self._step()

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """A fit stopped inside a group (max_time, no validation): step with what it has."""
        self.flush()

    def flush(self) -> None:
        """Step with the gradients of an unfinished group, if any."""
        if self.pending and self._opt is not None:
            self._step()

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, module: pl.LightningModule, optimizer: Any
    ) -> None:
        """The precision path's clipping: Lightning calls this after unscaling, before stepping."""
        if self.clip is not None and not self.raw:
            self._clip(optimizer)

    def _clip(self, optimizer: Any) -> None:
        assert self._module is not None
        self._module.clip_gradients(
            optimizer,
            gradient_clip_val=self.clip,
            gradient_clip_algorithm=self.settings.gradient_clip_algorithm,
        )

    def _step(self) -> None:
        if self.raw and self.clip is not None:
            self._clip(self._opt)
        self._opt.step()
        if self._sched is not None:
            for _ in range(self.pending):
                self._sched.step()
        self.pending = 0
