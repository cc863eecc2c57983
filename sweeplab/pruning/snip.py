"""SNIP (Lee et al. 2019): connection sensitivity |g * w| on one batch, normalized.

Pruning at initialization is the schedule's job (schedule=at_init); this file only scores.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.pruning.base import Pruner
from sweeplab.pruning.gradient import Batch, check_n_batches, mean_gradient, scoring, take_batches


class SNIP(Pruner):
    """Score = |dL/dc| / sum over all weights, c the connection gates (w -> c * w) at c = 1.

    dL/dc = g * w, so the sensitivity is |g * w| normalized to sum to 1 over the prunable
    weights, as in the paper (Eq. 6) and Synaptic-Flow's SNIP; the normalization does not
    change which weights are kept, but makes scores comparable across models for hybrid.

    Args:
        sparsity: fraction of prunable weights to prune.
        n_batches: batches whose gradients are accumulated (the paper uses one).
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
        sensitivity = {name: (params[name].detach() * g).abs() for name, g in grads.items()}
        total = sum(float(s.sum()) for s in sensitivity.values())
        # An all-zero gradient (e.g. every ReLU dead) leaves nothing to normalize by.
        return {n: s / total for n, s in sensitivity.items()} if total > 0 else sensitivity
