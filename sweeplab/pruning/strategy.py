"""What every pruning strategy declares: its name, what it produces, what it prunes.

Two kinds share this base. A `Pruner` (sweeplab.pruning.base) scores weights and produces
masks over the model it is given; a `ModelPruner` (structured strategies) produces a new,
physically smaller model. The engine reads `produces` to know which one it holds, and checks
schedules and recoveries against it before any training.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

Produces = Literal["masks", "model"]
Batches = Iterable[tuple[Tensor, Tensor]]


class Strategy:
    """Base of every pruning strategy.

    Attributes:
        name: the strategy name recorded in rows (the config file's name).
        produces: "masks" (weights are masked, the architecture stays) or "model" (a smaller
            model replaces the dense one).
        granularity: what one pruned unit is: weight | channel | neuron | block.
        sparsity: the configured target (pruning.sparsity), a fraction of the prunable
            weights; None where the strategy sets its amount itself (threshold or quality
            modes, structured ratios).
        trains_sparse: trains sparse from initialization on its own mask (static, SET,
            RigL: sweeplab.pruning.dynamic): no dense model is trained or cached.
        updates_weights: also changes the weights it keeps (SparseGPT's reconstruction
            writes them into the model), instead of only masking the others.
    """

    produces: ClassVar[Produces] = "masks"
    trains_sparse: ClassVar[bool] = False
    updates_weights: ClassVar[bool] = False
    name: str
    granularity: str = "weight"
    sparsity: float | None = None

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Raise SweeplabError if this strategy cannot prune `model`; run before dense training."""


class ModelPruner(Strategy):
    """A strategy that returns a physically smaller copy of the model (no masks).

    Attributes:
        ratio: requested fraction of channels, neurons or blocks to remove.
    """

    produces: ClassVar[Produces] = "model"
    ratio: float

    def prune(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> nn.Module:
        """A physically smaller copy of model; the model itself is left as it was.

        Args:
            model: the trained dense model (no masks attached).
            example_input: one batch on the model's device, for tracing.
            batches: training batches, for data-driven criteria.
            generator: seeded generator, for stochastic criteria.
        Returns:
            The pruned copy.
        """
        raise NotImplementedError
