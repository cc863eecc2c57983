"""First-order Taylor pruning: |w * dL/dw| (ShrinkBench's MagGrad; Molchanov et al. 2017)."""

from __future__ import annotations

from torch import Tensor

from sweeplab.pruning.gradient import Gradient


class Taylor(Gradient):
    """Score = |w * g|: the first-order estimate of the loss change when w is set to zero.

    g is the loss gradient accumulated over n_batches, divided by n_batches.

    Args:
        sparsity: fraction of prunable weights to prune.
        n_batches: training batches whose gradients are accumulated.
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def from_gradients(
        self, params: dict[str, Tensor], grads: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        return {name: (params[name].detach() * g).abs() for name, g in grads.items()}
