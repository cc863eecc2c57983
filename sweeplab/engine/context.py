"""RunContext: all that a schedule or a recovery sees of a run, and what a schedule yields.

Schedules (sweeplab.engine.schedules) and recoveries (sweeplab.engine.recovery) act on a run
through this protocol only; the pipeline (sweeplab.engine.pipeline) implements it. A schedule
yields one `Outcome` per result; the pipeline measures it and writes its row at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pytorch_lightning as pl
from torch import Tensor, nn

from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.train import Distillation
from sweeplab.pruning.budget import Target

Masks = dict[str, Tensor]  # parameter name -> 0/1 mask (sweeplab.pruning.masks)
State = Mapping[str, Tensor]  # a plain (unmasked) state_dict


@dataclass
class Outcome:
    """One pruned and recovered model, ready to be measured as one result row.

    Attributes:
        masks: the masks attached to the model ({} when a structured pruner shrank it).
        before: (test, val) accuracy right after pruning, before recovery; None when pruning
            happened during training.
        extra: metrics only this recovery knows (e.g. acc_reinit_test, shared_bits).
        round: iterative schedules: the round number.
        requested: the sparsity the schedule asked for in this result.
        final: the run's last result (its row carries the run's own id).
    """

    masks: Masks
    before: tuple[float, float] | None
    extra: dict[str, object] = field(default_factory=dict)
    round: int | None = None
    requested: float | None = None
    final: bool = True


class RunContext(Protocol):
    """The operations and facts a run offers its schedule and recovery.

    Attributes:
        seed: the run seed.
        train: the dense training recipe (train.*).
        finetune: the recovery recipe (finetune.*).
        sparsity: pruning.sparsity, the final target of the schedule; None where the pruner
            sets its amount itself (threshold or quality modes, structured ratios).
        model: the model being pruned and recovered, masks attached.
    """

    seed: int
    train: TrainConfig
    finetune: TrainConfig
    sparsity: float | None

    @property
    def model(self) -> nn.Module: ...

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps in one epoch over the training split at `batch_size`."""
        ...

    def prune(self, target: Target | None, existing: Masks | None = None) -> Masks:
        """Score, threshold to `target` and attach masks; returns them.

        Args:
            target: the sparsity after this step; None: the pruner's own amount (structured
                ratio, threshold mode).
            existing: earlier masks (what they prune stays pruned).
        """
        ...

    def fit(
        self,
        recipe: TrainConfig,
        phase: str,
        *,
        callbacks: Sequence[pl.Callback] = (),
        lr_window: tuple[int, int] | None = None,
        distill: Distillation | None = None,
        steps: int | None = None,
    ) -> None:
        """Train the model in place (masks stay attached); phase names metrics and timing.

        steps: exactly this many optimizer steps instead of recipe.epochs whole epochs.
        """
        ...

    def evaluate(self) -> tuple[float, float]:
        """(test, val) accuracy of the model as it is now."""
        ...

    def reset_to(self, state: State | nn.Module) -> None:
        """Load weights into the model; masks stay attached."""
        ...

    def snapshot(self, step: int) -> State:
        """Weights at optimizer step `step` of dense training (0: initialization)."""
        ...

    def dense_model(self) -> nn.Module:
        """A separate copy of the trained dense model."""
        ...

    def fresh_init(self, stream: str = "init") -> nn.Module:
        """A newly initialized model: "init" gives the dense model's initialization, "control"
        the re-initialization of controls (a draw independent of it and of every other stream).
        """
        ...
