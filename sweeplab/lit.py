"""The LightningModule that trains any classifier nn.Module, and `fit`, which drives it."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import Logger
from torch import Tensor, nn

from sweeplab.data.base import Splits, TensorBatches
from sweeplab.errors import SweeplabError, check_positive

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant")
# Config section that holds each phase's hyperparameters, for error messages.
CONFIG_SECTION = {"dense": "train", "finetune": "finetune"}
EVAL_BATCH = 2048  # examples per validation batch; memory only, not results

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")


@dataclass
class TrainConfig:
    """One training phase (dense training or finetune). lr is per batch of batch_size."""

    epochs: int
    lr: float
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"

    def check(self, section: str, allow_zero_epochs: bool = False) -> TrainConfig:
        """Raise SweeplabError naming `section.key` for any invalid value; return self."""
        if not (allow_zero_epochs and self.epochs == 0):
            check_positive(f"{section}.epochs", self.epochs, integer=True)
        check_positive(f"{section}.batch_size", self.batch_size, integer=True)
        check_positive(f"{section}.lr", self.lr)
        if self.optimizer not in OPTIMIZERS:
            raise SweeplabError(
                f"{section}.optimizer={self.optimizer!r} is not one of {list(OPTIMIZERS)}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise SweeplabError(
                f"{section}.lr_schedule={self.lr_schedule!r} is not one of {list(LR_SCHEDULES)}"
            )
        return self


class LitClassifier(pl.LightningModule):
    """Cross-entropy training of `model`; logs <phase>/train_loss and <phase>/val_acc per epoch."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, total_steps: int, phase: str) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.total_steps = total_steps
        self.phase = phase
        self.automatic_optimization = False
        self._loss_sum = torch.zeros(())
        self._steps = 0

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # One Lightning batch carries `inner_steps` minibatches; each gets its own optimizer
        # step on the raw optimizer, in the same order as unchunked training, so results are
        # identical. Lightning's per-batch machinery (fetcher, device transfer, hooks, the
        # automatic-optimization closure) cost ~0.4 ms per step, ~30% of a LeNet-300-100 step
        # on 2 CPU cores; here it is paid once per chunk (bench/throughput.py).
        opt = self.optimizers(use_pl_optimizer=False)
        sched = self.lr_schedulers()
        x, y = batch
        for xb, yb in zip(x.split(self.cfg.batch_size), y.split(self.cfg.batch_size), strict=True):
            loss = F.cross_entropy(self.model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            # Summed here and logged once per epoch: per-step self.log costs more than a step.
            self._loss_sum = self._loss_sum.to(loss.device) + loss.detach()
            self._steps += 1

    def on_train_epoch_end(self) -> None:
        mean = float(self._loss_sum) / max(self._steps, 1)
        self._loss_sum, self._steps = torch.zeros(()), 0
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
        if cfg.lr_schedule == "constant":
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.total_steps, 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(
    model: nn.Module,
    splits: Splits,
    cfg: TrainConfig,
    *,
    seed: int,
    phase: str,
    accelerator: str = "cpu",
    devices: int = 1,
    logger: Logger | None = None,
    validate: bool = True,
    inner_steps: int = 8,
) -> None:
    """Train model in place on splits.train for cfg.epochs; validate on splits.val each epoch.

    Args:
        model: any classifier producing logits.
        splits: tensors already on the run's device.
        cfg: optimizer, lr schedule, epochs and batch size.
        seed: seeds the batch order.
        phase: metric prefix ("dense", "finetune").
        accelerator: Lightning accelerator ("cpu", "gpu").
        devices: Lightning devices.
        logger: a Lightning logger, or None for none.
        validate: run the validation loop each epoch.
        inner_steps: optimizer steps per Lightning batch; speed only, results are identical.
    """
    if cfg.epochs == 0:
        return
    train = TensorBatches(
        splits.train_x, splits.train_y, cfg.batch_size, shuffle=True, seed=seed, group=inner_steps
    )
    val = TensorBatches(splits.val_x, splits.val_y, EVAL_BATCH) if validate else None
    lit = LitClassifier(model, cfg, total_steps=cfg.epochs * train.steps, phase=phase)
    trainer = pl.Trainer(
        max_epochs=cfg.epochs,
        accelerator=accelerator,
        devices=devices,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        log_every_n_steps=1,
    )
    trainer.fit(lit, train_dataloaders=train, val_dataloaders=val)
