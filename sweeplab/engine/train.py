"""The LightningModule that trains any classifier nn.Module, and `fit`, which drives it.

The hyperparameters of one phase are a TrainConfig (sweeplab.engine.recipe).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import Logger
from torch import Tensor, nn

from sweeplab.data.augment import crop_flip
from sweeplab.data.base import Splits, TensorBatches
from sweeplab.engine import streams
from sweeplab.engine.penalties import bn_scales, l1
from sweeplab.engine.progress import progress_callbacks
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.stepping import Stepper
from sweeplab.engine.trainer_settings import DEFAULTS, TrainerSettings, torch_flags_kept
from sweeplab.pruning.masks import PRUNABLE_TYPES

# Config section that holds each phase's hyperparameters, for error messages.
CONFIG_SECTION = {
    "dense": "train",
    "rewind": "train",
    "retrain": "train",
    "finetune": "finetune",
    "share": "finetune",
    "control": "train",
}
EVAL_BATCH = 2048  # examples per validation batch; memory only, not results

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
warnings.filterwarnings("ignore", ".*defined a `validation_step` but have no `val_dataloader`.*")


@dataclass
class Distillation:
    """Distillation from a teacher: alpha * CE + (1 - alpha) * T^2 * KL(teacher || student)."""

    teacher: nn.Module
    alpha: float = 0.5
    temperature: float = 4.0


class StepCallback(pl.Callback):
    """A Lightning callback that also hears every optimizer step (chunked batches hide them)."""

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        """Called after minibatch `step` (1-based) of this fit: a step, unless accumulated."""


class LitClassifier(pl.LightningModule):
    """Cross-entropy training of `model`; logs <phase>/train_loss and <phase>/val_acc per epoch.

    Args:
        model: any classifier producing logits.
        cfg: the phase's hyperparameters.
        total_steps: optimizer steps in this fit; training stops after exactly this many.
        phase: metric prefix ("dense", "finetune", ...).
        lr_window: (start, length) in optimizer steps of the cosine curve this fit follows;
            default (0, total_steps). Learning-rate rewinding replays the tail of training's curve.
        distill: optional teacher for distillation.
        steps_per_epoch: optimizer steps in one epoch (default total_steps / cfg.epochs); the
            step lr schedule and warmup count epochs in these.
        settings: precision, clipping, accumulation (engine/stepping.py); default: none.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        total_steps: int,
        phase: str,
        lr_window: tuple[int, int] | None = None,
        distill: Distillation | None = None,
        augment: torch.Generator | None = None,
        steps_per_epoch: float | None = None,
        settings: TrainerSettings = DEFAULTS,
    ) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.total_steps = total_steps
        self.phase = phase
        self.lr_window = lr_window or (0, total_steps)
        self.steps_per_epoch = steps_per_epoch or total_steps / max(cfg.epochs, 1)
        self.distill = distill
        self.augment = augment  # generator for crop_flip, or None for no augmentation
        self.automatic_optimization = False
        self.optimizer_steps = 0  # minibatches trained; one optimizer step each unless accumulated
        self.stepper = Stepper(settings)
        self._step_callbacks: list[StepCallback] = []
        self._penalized: list[nn.Module] = []
        self._bn_scales: list[Tensor] = []
        self._loss_sum = torch.zeros(())
        self._batches = 0

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def on_train_start(self) -> None:
        self._step_callbacks = [c for c in self.trainer.callbacks if isinstance(c, StepCallback)]
        if self.cfg.weight_l1 or self.cfg.weight_l2:
            self._penalized = [m for m in self.model.modules() if isinstance(m, PRUNABLE_TYPES)]
        # Found once per fit, not per step: the scales are the same parameters throughout.
        self._bn_scales = bn_scales(self.model) if self.cfg.bn_l1 else []

    batch_dim = 0  # the examples' dimension of a batch

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The training objective for one minibatch (augmented when the fit augments)."""
        if self.augment is not None:
            x = crop_flip(x, self.augment)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        if self.distill is not None:
            with torch.no_grad():
                teacher = self.distill.teacher(x)
            t, a = self.distill.temperature, self.distill.alpha
            kl = F.kl_div(
                F.log_softmax(logits / t, 1), F.log_softmax(teacher / t, 1), log_target=True,
                reduction="batchmean",
            )  # fmt: skip
            loss = a * loss + (1 - a) * t * t * kl
        if self._penalized:
            # Read after the forward: under a pruning mask, .weight (weight_orig * mask) is
            # recomputed by each forward, and pruned entries add nothing.
            weights = [m.weight for m in self._penalized]
            if self.cfg.weight_l1:
                loss = loss + self.cfg.weight_l1 * sum(w.abs().sum() for w in weights)
            if self.cfg.weight_l2:
                loss = loss + self.cfg.weight_l2 * sum(w.pow(2).sum() for w in weights)
        if self._bn_scales:
            loss = loss + self.cfg.bn_l1 * l1(self._bn_scales)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # One Lightning batch carries `inner_steps` minibatches, stepped (stepping.py) in the
        # order of unchunked training: identical results. Lightning's per-batch machinery (~0.4
        # ms, ~30% of a LeNet-300-100 step on 2 cores) is paid once per chunk (bench/throughput.py).
        self.stepper.chunk(self)
        x, y = batch
        b, dim = self.cfg.batch_size, self.batch_dim  # dim 1: a stacked fit's [K, n, ...]
        for xb, yb in zip(x.split(b, dim), y.split(b, dim), strict=True):
            if self.optimizer_steps >= self.total_steps:
                # A fit of a step count that is no whole number of epochs (weight rewinding
                # to step k trains T - k steps) ends inside its last epoch.
                self.trainer.should_stop = True
                break
            loss = self.loss(xb, yb)
            self.stepper.minibatch(loss, self.optimizer_steps + 1)
            self.optimizer_steps += 1
            for callback in self._step_callbacks:
                callback.on_optimizer_step(self, self.optimizer_steps)
            # Summed here and logged once per epoch: per-step self.log costs more than a step.
            self._loss_sum = self._loss_sum.to(loss.device) + loss.detach()
            self._batches += 1

    def on_validation_model_zero_grad(self) -> None:
        self.stepper.flush()  # Lightning frees gradients before validating: step with them first
        super().on_validation_model_zero_grad()

    def on_train_epoch_end(self) -> None:
        mean = float(self._loss_sum) / max(self._batches, 1)
        self._loss_sum, self._batches = torch.zeros(()), 0
        if not math.isfinite(mean):
            raise FloatingPointError(
                f"{self.phase} loss became {mean} in epoch {self.current_epoch}; "
                f"lower {CONFIG_SECTION.get(self.phase, self.phase)}.lr (now {self.cfg.lr})"
            )
        self.log(f"{self.phase}/train_loss", mean)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        acc = (self.model(x).argmax(1) == y).float().mean()
        self.log(f"{self.phase}/val_acc", acc, batch_size=len(y))

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's union return type
        params = [p for p in self.model.parameters() if p.requires_grad]
        cfg = self.cfg
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        start, length = self.lr_window
        # Warmup belongs to a curve's start: a fit that replays a curve's tail has none.
        per_epoch = self.steps_per_epoch
        warmup = round((cfg.warmup_epochs or 0) * per_epoch) if start == 0 else 0
        if cfg.lr_schedule == "constant" and not warmup:
            return opt

        def factor(step: int) -> float:
            at = start + step
            f = 1.0
            if cfg.lr_schedule == "cosine":
                f = 0.5 * (1 + math.cos(math.pi * min(at, length) / length))
            elif cfg.lr_schedule == "step":
                gamma = 0.1 if cfg.lr_gamma is None else cfg.lr_gamma
                f = gamma ** (at // max(round(cfg.lr_step_epochs * per_epoch), 1))
            return f * (at + 1) / warmup if at < warmup else f

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(
    model: nn.Module,
    splits: Splits,
    cfg: TrainConfig,
    *,
    seed: int,
    index: int = 0,
    phase: str,
    accelerator: str = "cpu",
    devices: int = 1,
    logger: Logger | None = None,
    validate: bool = True,
    inner_steps: int | None = None,
    lr_window: tuple[int, int] | None = None,
    distill: Distillation | None = None,
    callbacks: Sequence[pl.Callback] = (),
    steps: int | None = None,
    settings: TrainerSettings = DEFAULTS,
) -> None:
    """Train model in place on splits.train for cfg.epochs; validate on splits.val each epoch.

    Args:
        model: any classifier producing logits.
        splits: tensors already on the run's device.
        cfg: optimizer, lr schedule, epochs and batch size.
        seed: the run seed; batch order, augmentation and stochastic layers each draw from
            their own stream of it (`streams`).
        index: which fit of the run this is (0 = dense training, r = result r); a replay of a
            fit passes the same index and sees the same batches.
        phase: metric prefix ("dense", "finetune").
        accelerator, devices: Lightning's ("cpu", "gpu"; 1).
        logger: a Lightning logger, or None.
        validate: run the validation loop each epoch.
        inner_steps: minibatches per Lightning batch (None: settings.inner_steps, 8); speed only.
        lr_window: (start, length) of the cosine curve in optimizer steps (lr rewinding).
        distill: optional teacher for knowledge distillation.
        callbacks: Lightning callbacks; StepCallback ones also hear every optimizer step.
        steps: train exactly this many optimizer steps instead of cfg.epochs whole epochs (the
            last epoch may be partial); the batch order is the same as for whole epochs.
        settings: the run's trainer settings (engine/trainer_settings.py); default: none.
    """
    if cfg.epochs == 0 or steps == 0:
        return
    train = TensorBatches(
        splits.train_x,
        splits.train_y,
        cfg.batch_size,
        shuffle=True,
        seed=streams.stream_seed(seed, "batches", index),
        group=inner_steps or settings.inner_steps,
    )
    val = TensorBatches(splits.val_x, splits.val_y, EVAL_BATCH) if validate else None
    augment = streams.generator(seed, "augment", index) if splits.augment else None
    streams.seed_global(seed, "layers", index)  # dropout and any other stochastic layer
    total = cfg.epochs * train.steps if steps is None else steps
    lit = LitClassifier(
        model, cfg, total, phase, lr_window, distill, augment=augment,
        steps_per_epoch=train.steps, settings=settings,
    )  # fmt: skip
    progress, bar = progress_callbacks(settings, phase, index)
    with torch_flags_kept():  # deterministic / benchmark are process-wide: not past this fit
        trainer = pl.Trainer(
            max_epochs=-(-total // train.steps),
            accelerator=accelerator,
            devices=devices,
            logger=logger if logger is not None else False,
            callbacks=[*callbacks, lit.stepper, *progress],
            enable_checkpointing=False,
            enable_progress_bar=bar,
            enable_model_summary=False,
            limit_val_batches=1.0 if validate else 0,
            log_every_n_steps=1,
            **settings.trainer_kwargs(),
        )
        trainer.fit(lit, train_dataloaders=train, val_dataloaders=val)


def steps_per_epoch(splits: Splits, batch_size: int) -> int:
    """Optimizer steps in one epoch over splits.train."""
    return -(-len(splits.train_x) // batch_size)
