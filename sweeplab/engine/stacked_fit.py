"""One Lightning fit that trains K variants of a model together (engine/stacked_model.py).

Each variant sees exactly what its own `train.fit` would: its own batch order and augmentation
streams (seed, fit index), the same optimizer, lr curve, step count and stop. Variants that
share seed and fit index see the same batches, which are then fed once. The loss is the sum of
the variants' mean losses, so each variant's gradient is its own. A variant whose loss becomes
NaN or infinite fails alone, with train.fit's error; the others train on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from sweeplab.data.augment import crop_flip
from sweeplab.data.base import TensorBatches
from sweeplab.engine import streams
from sweeplab.engine.progress import progress_callbacks
from sweeplab.engine.stacked_model import StackedModel
from sweeplab.engine.train import CONFIG_SECTION, LitClassifier
from sweeplab.engine.trainer_settings import torch_flags_kept


class ZippedBatches:
    """The variants' own shuffled batches, stacked: items ([K, n, ...], [K, n])."""

    def __init__(self, batches: Sequence[TensorBatches]) -> None:
        self.batches = list(batches)

    def __len__(self) -> int:
        return len(self.batches[0])

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if len(self.batches) == 1:
            yield from self.batches[0]
            return
        for items in zip(*self.batches, strict=True):
            yield torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


class StackedClassifier(LitClassifier):
    """LitClassifier over a StackedModel: per-variant losses, per-variant failure."""

    def __init__(self, model: StackedModel, *args: Any, shared: bool, augments: list,
                 teachers: StackedModel | None = None, **kw: Any) -> None:  # fmt: skip
        super().__init__(model, *args, **kw)
        self.shared = shared  # one batch sequence for every variant
        self.batch_dim = 0 if shared else 1
        self.augments = augments  # crop_flip generators: one per batch sequence, or none
        self.__dict__["teachers"] = teachers  # not trained: outside the module tree
        self.errors: list[BaseException | None] = [None] * model.k
        self._variant_sums = torch.zeros(model.k)

    def variant_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """Each variant's mean training loss on its minibatch: shape [K]."""
        logits = self.model(x, shared=self.shared)
        k, b = logits.shape[:2]
        targets = y.expand(k, -1) if self.shared else y
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        loss = ce.view(k, b).mean(1)
        if self.teachers is not None:
            d = self.distill
            assert d is not None
            with torch.no_grad():
                teacher = self.teachers(x, shared=self.shared)
            t, a = d.temperature, d.alpha
            kl = F.kl_div(
                F.log_softmax(logits / t, -1), F.log_softmax(teacher / t, -1), log_target=True,
                reduction="none",
            ).sum(-1).mean(1)  # fmt: skip
            loss = a * loss + (1 - a) * t * t * kl
        return loss

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The sum of the variants' losses (each variant's gradient is its own); each
        variant's loss is summed apart for its epoch's check."""
        if self.augments and self.shared:
            x = crop_flip(x, self.augments[0])
        elif self.augments:
            x = torch.stack([crop_flip(x[k], g) for k, g in enumerate(self.augments)])
        losses = self.variant_losses(x, y)
        self._variant_sums = self._variant_sums.to(losses.device) + losses.detach()
        return losses.sum()

    def on_train_epoch_end(self) -> None:
        means = (self._variant_sums / max(self._batches, 1)).tolist()
        self._variant_sums, self._batches = torch.zeros(self.model.k), 0
        self._loss_sum = torch.zeros(())  # the sum over variants: unused here
        for k, mean in enumerate(means):
            if not math.isfinite(mean) and self.errors[k] is None:
                self.errors[k] = FloatingPointError(
                    f"{self.phase} loss became {mean} in epoch {self.current_epoch}; "
                    f"lower {CONFIG_SECTION.get(self.phase, self.phase)}.lr (now {self.cfg.lr})"
                )
        alive = [m for k, m in enumerate(means) if self.errors[k] is None]
        if not alive:
            self.trainer.should_stop = True
            return
        self.log(f"{self.phase}/train_loss", sum(alive) / len(alive))


def fit_stacked(requests: Sequence[dict[str, Any]]) -> list[BaseException | None]:
    """Train the requests' models (train.fit's keyword arguments, equal but for model, seed
    and index, distill's teacher and logger) as one stacked model, in place.

    Returns:
        Each variant's error (None: trained); a failed variant's model is left as it was.
    """
    r0 = requests[0]
    cfg, splits, settings = r0["cfg"], r0["splits"], r0["settings"]
    if cfg.epochs == 0 or r0.get("steps") == 0:
        return [None] * len(requests)
    streams_of = [(r["seed"], r.get("index", 0)) for r in requests]
    shared = len(set(streams_of)) == 1
    group = r0.get("inner_steps") or settings.inner_steps
    batches = [
        TensorBatches(
            splits.train_x,
            splits.train_y,
            cfg.batch_size,
            shuffle=True,
            seed=streams.stream_seed(seed, "batches", index),
            group=group,
        )  # fmt: skip
        for seed, index in (streams_of[:1] if shared else streams_of)
    ]
    augments = (
        [streams.generator(seed, "augment", index) for seed, index in streams_of[: len(batches)]]
        if splits.augment
        else []
    )
    per_epoch = batches[0].steps
    total = cfg.epochs * per_epoch if r0.get("steps") is None else r0["steps"]
    model = StackedModel([r["model"] for r in requests])
    distill = r0.get("distill")
    teachers = StackedModel([r["distill"].teacher for r in requests]).eval() if distill else None
    lit = StackedClassifier(
        model, cfg, total, r0["phase"], r0.get("lr_window"), distill, shared=shared,
        augments=augments, teachers=teachers, steps_per_epoch=per_epoch, settings=settings,
    )  # fmt: skip
    progress, bar = progress_callbacks(settings, r0["phase"], r0.get("index", 0))
    for callback in progress:  # "finetune x15": the fit trains 15 variants
        callback.label = f"{callback.label} x{len(requests)}"  # type: ignore[attr-defined]
    with torch_flags_kept():
        trainer = pl.Trainer(
            max_epochs=-(-total // per_epoch),
            accelerator=r0.get("accelerator", "cpu"),
            devices=r0.get("devices", 1),
            logger=False,
            callbacks=[lit.stepper, *progress],
            enable_checkpointing=False,
            enable_progress_bar=bar,
            enable_model_summary=False,
            limit_val_batches=0,
            log_every_n_steps=1,
            **settings.trainer_kwargs(),
        )
        trainer.fit(lit, train_dataloaders=ZippedBatches(batches))
    model.write_back([r["model"] for r in requests], keep=[e is None for e in lit.errors])
    return lit.errors
