"""First-order Taylor pruning: |w * dL/dw| (ShrinkBench's MagGrad; Molchanov et al. 2017)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.pruning.base import Pruner
from sweeplab.pruning.gradient import Batch, check_n_batches, mean_gradient, scoring, take_batches


class Taylor(Pruner):
    """Score = |w * g|: the first-order estimate of the loss change when w is set to zero.

    g is the loss gradient accumulated over n_batches, divided by n_batches.

    Args:
        sparsity: fraction of prunable weights to prune.
        n_batches: training batches whose gradients are accumulated.
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def __init__(self, sparsity: float | None = None, *, n_batches: int = 1, **kwargs) -> None:
        super().__init__(sparsity, **kwargs)
        self.n_batches = check_n_batches(n_batches)

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[Batch],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        data = take_batches(batches, self.n_batches, self.name)
        with scoring(model, params):
            grads = mean_gradient(model, params, data)
        return {name: (params[name].detach() * g).abs() for name, g in grads.items()}
