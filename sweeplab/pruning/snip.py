"""SNIP (Lee et al. 2019): connection sensitivity |g * w| on one batch, normalized.

Pruning at initialization is the schedule's job (schedule=at_init); this file only scores.
"""

from __future__ import annotations

from torch import Tensor

from sweeplab.pruning.taylor import Taylor


class SNIP(Taylor):
    """Score = |dL/dc| / sum over all weights, c the connection gates (w -> c * w) at c = 1.

    dL/dc = g * w, so the sensitivity is |g * w| normalized to sum to 1 over the prunable
    weights, as in the paper (Eq. 6) and Synaptic-Flow's SNIP; the normalization does not
    change which weights are kept, but makes scores comparable across models for hybrid.

    Args:
        sparsity: fraction of prunable weights to prune.
        n_batches: batches whose gradients are accumulated (the paper uses one).
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def from_gradients(
        self, params: dict[str, Tensor], grads: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        sensitivity = super().from_gradients(params, grads)
        total = sum(float(s.sum()) for s in sensitivity.values())
        # An all-zero gradient (e.g. every ReLU dead) leaves nothing to normalize by.
        return {n: s / total for n, s in sensitivity.items()} if total > 0 else sensitivity
