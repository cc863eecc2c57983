"""Progress of one fit: a TQDM bar on a terminal, plain throttled lines elsewhere.

`trainer.progress` picks: "auto" (a bar when stdout is a terminal that no parallel worker of
the same sweep shares, else lines), "bar", "lines" or "off". Both name the phase ("dense",
"finetune", "finetune round 3"), the epoch, the last epoch's training loss and validation
accuracy and the fit's ETA. Lines (CI, SLURM logs, `| tee`, joblib workers) read

    dense  epoch 3/10  loss 0.412  val 95.1%  4.2 s/epoch  ETA 29 s

one per epoch at most, and only once `trainer.progress_every` seconds have passed since the
fit started or since its last line: a fit shorter than that prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from sweeplab.engine.sweep_position import duration, workers
from sweeplab.engine.trainer_settings import TrainerSettings


def phase_label(phase: str, index: int) -> str:
    """How progress names a fit: its phase, and its round when the run has several."""
    return f"{phase} round {index}" if index > 1 else phase


class _Clock:
    """Epochs done, seconds per epoch and the fit's ETA, read from the trainer."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.start = time.perf_counter()

    def facts(self, trainer: pl.Trainer, done: int) -> dict[str, str]:
        """Loss, val accuracy, s/epoch and ETA after `done` epochs (keys: display names)."""
        metrics = trainer.callback_metrics
        out: dict[str, str] = {}
        loss = metrics.get(f"{self.phase}/train_loss")
        if loss is not None:
            out["loss"] = f"{float(loss):.3f}"
        val = metrics.get(f"{self.phase}/val_acc")
        if val is not None:
            out["val"] = f"{100 * float(val):.1f}%"
        if done:
            elapsed = time.perf_counter() - self.start
            per_epoch = elapsed / done
            eta = per_epoch * max(trainer.max_epochs - done, 0)
            for timer in (c for c in trainer.callbacks if isinstance(c, Timer)):  # max_time
                eta = min(eta, timer.time_remaining() or 0.0)
            out["s/epoch"] = f"{per_epoch:.0f}" if per_epoch >= 10 else f"{per_epoch:.2g}"
            out["ETA"] = duration(eta)
        return out


class EpochLines(pl.Callback):
    """Plain progress lines, at most one per epoch and one per `every` seconds of a fit.

    An epoch is reported when the next one starts (or the fit ends): by then its loss, logged
    by LitClassifier at the epoch's end, is in the trainer's metrics.
    """

    def __init__(self, label: str, phase: str, every: float) -> None:
        self.label, self.phase, self.every = label, phase, every
        self.clock = _Clock(phase)
        self.last = self.clock.start

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock = _Clock(self.phase)
        self.last = self.clock.start

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._report(trainer, trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, trainer.current_epoch)

    def _report(self, trainer: pl.Trainer, done: int) -> None:
        now = time.perf_counter()
        if done < 1 or now - self.last < self.every:
            return
        self.last = now
        facts = self.clock.facts(trainer, done)
        parts = [f"{self.label}  epoch {done}/{trainer.max_epochs}"]
        for key in ("loss", "val"):
            if key in facts:
                parts.append(f"{key} {facts[key]}")
        parts += [f"{facts['s/epoch']} s/epoch", f"ETA {facts['ETA']}"]
        print("  " + "  ".join(parts), flush=True)


class PhaseBar(TQDMProgressBar):
    """Lightning's TQDM bar, described by phase and epoch, showing loss, val and the fit's ETA;
    no validation or sanity bars; it disappears when the fit ends (the run's lines stay)."""

    def __init__(self, label: str, phase: str) -> None:
        super().__init__()
        self.label, self.phase = label, phase
        self.clock = _Clock(phase)

    def init_train_tqdm(self) -> Tqdm:
        bar = super().init_train_tqdm()
        bar.leave = False
        return bar

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.clock = _Clock(self.phase)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        self.train_progress_bar.set_description(f"{self.label} {epoch}")

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        facts = self.clock.facts(trainer, trainer.current_epoch)
        facts.pop("s/epoch", None)
        if "ETA" in facts:
            facts["fit ETA"] = facts.pop("ETA")
        return facts  # type: ignore[return-value]


def progress_callbacks(
    settings: TrainerSettings, phase: str, index: int
) -> tuple[list[pl.Callback], bool]:
    """The progress callbacks of one fit, and whether Lightning's progress bar is enabled.

    Args:
        settings: trainer.progress and trainer.progress_every.
        phase: the fit's phase (metric prefix).
        index: the fit's index in its run (0 dense, r the r-th result).
    """
    mode = settings.progress
    if mode == "auto":  # parallel workers' bars would overwrite each other on one terminal
        mode = "bar" if sys.stdout.isatty() and workers() == 1 else "lines"
    label = phase_label(phase, index)
    if mode == "bar":
        return [PhaseBar(label, phase)], True
    if mode == "lines":
        return [EpochLines(label, phase, settings.progress_every)], False
    return [], False
