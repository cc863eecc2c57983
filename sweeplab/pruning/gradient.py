"""Gradient pruning: |dL/dw| of the cross-entropy over a few training batches.

Also home of the machinery every data-driven criterion shares (taylor, snip, grasp): taking
batches, a model-state guard, and the mean loss gradient.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab.errors import SweeplabError, check_positive
from sweeplab.pruning.base import Pruner

Batch = tuple[Tensor, Tensor]


def take_batches(batches: Iterable[Batch], n_batches: int, criterion: str) -> list[Batch]:
    """The first n_batches batches of one pass (fewer if the data has fewer), as a list.

    A list, because TensorBatches reshuffles on every iteration and GraSP must see the same
    batches in both of its passes.

    Args:
        batches: training batches.
        n_batches: how many to take.
        criterion: the criterion's name, for the error message.
    Returns:
        Up to n_batches (x, y) pairs.
    """
    taken = list(itertools.islice(iter(batches), n_batches))
    if not taken:
        raise SweeplabError(
            f"pruning={criterion} scores with training batches but got none; "
            "give it a non-empty training split"
        )
    return taken


@contextmanager
def scoring(model: nn.Module, params: dict[str, Tensor]) -> Iterator[None]:
    """Score the model in eval mode and leave it exactly as found.

    Eval mode, as Synaptic-Flow's prune_loop does for SNIP: no dropout (so scores are
    deterministic without touching the global RNG) and BatchNorm uses, and does not update,
    its running statistics (GraSP switches batch norm to train mode inside this context by
    default, as its authors' code scores; see grasp.py). Modes, buffers and requires_grad
    flags are restored afterwards; .grad is never written because the criteria use
    torch.autograd.grad, not backward().

    Args:
        model: the model being scored.
        params: the prunable weights the criterion differentiates with respect to.
    """
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    flags = [(p, p.requires_grad) for p in params.values()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for p, flag in flags:
            p.requires_grad_(flag)


def batch_gradient(
    model: nn.Module,
    params: dict[str, Tensor],
    batch: Batch,
    *,
    temperature: float = 1.0,
    create_graph: bool = False,
) -> list[Tensor]:
    """Gradient of the mean cross-entropy of one batch (logits / temperature) w.r.t. params.

    Args:
        model: the model, in the state `scoring` set up.
        params: prunable weights (weight_orig where a mask is attached).
        batch: one (x, y) pair.
        temperature: divides the logits (GraSP's T); 1 for the plain loss.
        create_graph: keep the graph, for a second derivative.
    Returns:
        One gradient per params entry, in order; zeros where a weight is unused.
    """
    x, y = batch
    loss = F.cross_entropy(model(x) / temperature, y)
    weights = list(params.values())
    grads = torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]


def mean_gradient(
    model: nn.Module, params: dict[str, Tensor], batches: list[Batch], temperature: float = 1.0
) -> dict[str, Tensor]:
    """Gradient accumulated over batches, divided by their number (detached).

    Args:
        model: the model, in the state `scoring` set up.
        params: prunable weights.
        batches: the batches to average over.
        temperature: divides the logits.
    Returns:
        name -> mean gradient, shaped like the weight.
    """
    total = [torch.zeros_like(w) for w in params.values()]
    for batch in batches:
        grads = batch_gradient(model, params, batch, temperature=temperature)
        total = [t + g.detach() for t, g in zip(total, grads, strict=True)]
    return {name: t / len(batches) for name, t in zip(params, total, strict=True)}


def check_n_batches(n_batches: object) -> int:
    """Return n_batches if it is a positive integer, else raise naming pruning.n_batches."""
    return int(check_positive("pruning.n_batches", n_batches, integer=True))


class Gradient(Pruner):
    """Score = |g|, g the loss gradient accumulated over n_batches (then divided by n_batches).

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
        return self.from_gradients(params, grads)

    def from_gradients(
        self, params: dict[str, Tensor], grads: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """Scores from the mean gradients; gradient-based subclasses change only this.

        Args:
            params: prunable weights by name.
            grads: their mean loss gradients over n_batches.
        Returns:
            name -> score tensor.
        """
        return {name: g.abs() for name, g in grads.items()}
