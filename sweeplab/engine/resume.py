"""Partial checkpoints of a fit: saved between epochs, resumed by the next attempt of the run.

A fit killed part-way (Ctrl-C, kill -9, a lost node) restarts from its last partial checkpoint,
not from its first epoch, and on CPU ends with bitwise the weights of a fit never interrupted:
the checkpoint holds everything the rest of the fit reads: weights and buffers, optimizer,
lr-scheduler and loss-scaler state, the optimizer-step counter, the epoch, and the state of each
random stream in play (batch order, augmentation, the global generator dropout draws from). It
is written as the dense cache writes (engine/cache.py: atomic, sha256 of its tensors, its
owner); a file that is damaged or belongs to another fit (another config, a copy) is ignored
with one warning.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from sweeplab.engine.cache import load_state, partial_path, save_state
from sweeplab.errors import warn

if TYPE_CHECKING:
    from sweeplab.engine.pipeline import RunSpec

MODEL = "model."  # prefix of the model's tensors in a partial checkpoint
EXTRA = "resume"  # the rest of the fit's state, serialized by torch.save into uint8 bytes
# The step Lightning's loggers write metrics at (its own checkpoints keep it too); logs only.
LOGGED = "_batches_that_stepped"


def owner(fit_id: str, config_sha256: str, phase: str, index: int) -> dict[str, object]:
    """Whose a partial checkpoint is: the dense id (dense training) or the run id (a recovery
    fit), the sha256 of the config behind it, and which fit of it (`fit`'s phase and index)."""
    return {"id": fit_id, "config_sha256": config_sha256, "phase": phase, "index": index}


class Resume(pl.Callback):
    """Saves the fit's state to `path` between epochs; restores it when the fit starts.

    Saved at the start of each epoch after the first of this attempt, so never after the last
    epoch, nor after an epoch whose loss was not finite (LitClassifier raises at its end).
    Whoever stores the fit's final result removes the file (engine/cache.py, pipeline.Run).

    Args:
        path: the partial checkpoint.
        owner: `owner()` of this fit; a file of another owner is ignored.
        label: the fit in messages ("dense training of 3f2a9c...").
        minutes: None: save every epoch; else only once this many minutes have passed since
            the attempt began or last saved (fewer writes when epochs are short).
    """

    def __init__(
        self, path: Path, owner: dict[str, object], label: str, minutes: float | None = None
    ) -> None:
        self.path, self.owner, self.label, self.minutes = path, owner, label, minutes
        self.start = 0  # epochs done when this attempt began
        self.restored: dict[str, Any] | None = None  # RNG states, set at on_train_start
        self.saved_at = time.monotonic()

    # -- restore --------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.saved_at = time.monotonic()
        redo = f"starting {self.label} at its first epoch"
        loaded = load_state(self.path, self.owner, redo=redo)
        if loaded is None:
            return
        state = loaded[0]
        weights = {k.removeprefix(MODEL): v for k, v in state.items() if k != EXTRA}
        model = module.model  # type: ignore[attr-defined]  # LitClassifier's
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            extra = torch.load(io.BytesIO(state[EXTRA].numpy().tobytes()), weights_only=True)
            model.load_state_dict(weights)
            module.optimizers(use_pl_optimizer=False).load_state_dict(extra["optimizer"])
            scheduler = module.lr_schedulers()
            if scheduler is not None:
                scheduler.load_state_dict(extra["scheduler"])  # type: ignore[union-attr]
            trainer.precision_plugin.load_state_dict(extra["precision"])  # AMP's loss scale
        except Exception as e:  # noqa: BLE001 - a file that does not fit is not used
            model.load_state_dict(before)
            warn(f"checkpoint {self.path} does not fit the model ({e}); {redo}")
            return
        self.start = int(extra["epoch"])
        module.optimizer_steps = int(extra["optimizer_steps"])  # type: ignore[attr-defined]
        # The fit loop then begins at this epoch: trainer.current_epoch, loggers and progress
        # bars count on from it.
        epochs = trainer.fit_loop.epoch_progress
        for progress in (epochs.current, epochs.total):
            progress.ready = progress.started = progress.processed = progress.completed = self.start
        if hasattr(trainer.fit_loop.epoch_loop, LOGGED):
            setattr(trainer.fit_loop.epoch_loop, LOGGED, int(extra["logged_steps"]))
        self.restored = extra
        print(f"resuming {self.label} at epoch {self.start + 1}/{trainer.max_epochs}", flush=True)

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # The random streams last: nothing between here and the first batch draws from them.
        extra, self.restored = self.restored, None
        if extra is None:
            return
        torch.set_rng_state(extra["global"])
        if extra["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(extra["cuda"])
        trainer.train_dataloader.generator.set_state(extra["batches"])  # type: ignore[union-attr]
        augment = module.augment  # type: ignore[attr-defined]
        if augment is not None:
            augment.set_state(extra["augment"])

    # -- save -----------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.start:
            return  # nothing trained yet in this attempt
        if self.minutes is not None and time.monotonic() - self.saved_at < 60 * self.minutes:
            return
        save_state(self.path, state(trainer, module), owner=self.owner)
        self.saved_at = time.monotonic()


def state(trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, Tensor]:
    """The fit's state between two epochs, as one flat dict of tensors."""
    model = module.model  # type: ignore[attr-defined]
    on_cuda = any(p.is_cuda for p in model.parameters())
    scheduler = module.lr_schedulers()
    augment = module.augment  # type: ignore[attr-defined]
    extra = {
        "epoch": trainer.current_epoch,  # epochs done
        "optimizer_steps": module.optimizer_steps,  # type: ignore[attr-defined]
        "logged_steps": getattr(trainer.fit_loop.epoch_loop, LOGGED, 0),
        "optimizer": module.optimizers(use_pl_optimizer=False).state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,  # type: ignore[union-attr]
        "precision": trainer.precision_plugin.state_dict(),  # {} in fp32
        "global": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if on_cuda else None,
        "batches": trainer.train_dataloader.generator.get_state(),  # type: ignore[union-attr]
        "augment": augment.get_state() if augment is not None else None,
    }
    buffer = io.BytesIO()
    torch.save(extra, buffer)
    blob = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    return {**{MODEL + k: v for k, v in model.state_dict().items()}, EXTRA: blob}


class Partials:
    """The partial checkpoints of a run's fits since its last stored result (pipeline.Run).

    Inactive (no checkpoints) until `active` is set: a Run driven by pipeline.run stores each
    result, and only then are the checkpoints of the fits behind it removed.
    """

    def __init__(self, spec: RunSpec) -> None:
        self.spec, self.active = spec, False
        self.paths: list[Path] = []

    def callbacks(
        self, phase: str, index: int, callbacks: Sequence[pl.Callback]
    ) -> list[pl.Callback]:
        """`callbacks`, or the fit's Resume if it has none: callbacks of its own (gradual
        pruning, checkpoint accuracies, snapshot replays) keep state outside the fit's."""
        if callbacks or not self.active:
            return list(callbacks)
        spec = self.spec
        if phase == "dense":  # one per dense model: any run of it resumes it
            fit_id, sha = spec.dense_id, spec.dense_sha256
            path = partial_path(spec.cache_dir, fit_id)
        else:
            fit_id, sha = spec.run_id, spec.run_sha256
            path = Path(spec.cache_dir) / "partial" / f"{fit_id}.{phase}{index}.partial"
            self.paths.append(path)
        what = f"{phase}ing" if phase.endswith("train") else f"{phase} training"  # retraining
        label = f"{what} of {fit_id}" + (f" (fit {index})" if index > 1 else "")
        resume = Resume(
            path, owner(fit_id, sha, phase, index), label, spec.trainer.checkpoint_minutes
        )
        return [resume]

    def stored(self) -> None:
        """A result is stored: the fits behind it need no resuming."""
        while self.paths:
            self.paths.pop().unlink(missing_ok=True)
