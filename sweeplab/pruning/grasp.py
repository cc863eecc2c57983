"""GraSP (Wang et al. 2020): keep the weights that preserve gradient flow, scored by θ ⊙ Hg.

Sign convention, following the authors' code (alecwangcq/GraSP, pruner/GraSP.py) and
Synaptic-Flow's port (ganguli-lab/Synaptic-Flow, Pruners/pruners.py): the paper's score is
S(-θ) = -θ ⊙ Hg and GraSP removes the weights with the LARGEST S(-θ) (removing them reduces
the gradient norm least, or increases it). Here higher = keep, so the score is θ ⊙ Hg,
exactly Synaptic-Flow's score; pruning the lowest θ ⊙ Hg removes the largest -θ ⊙ Hg. Note
that it is signed, not an absolute value: a large negative θ ⊙ Hg is pruned first.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_positive
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.gradient import (
    Batch,
    batch_gradient,
    check_n_batches,
    mean_gradient,
    scoring,
    take_batches,
)

# Added to the normalizer so an all-zero score does not divide by zero (the authors' eps).
EPS = 1e-10
# How BatchNorm normalizes while scoring: "train" (batch statistics, as the authors' code
# scores a fresh model in train mode) or "eval" (running statistics, as Synaptic-Flow's port).
BATCH_NORM_MODES = ("train", "eval")


class GraSP(Pruner):
    """Score = θ ⊙ H g / |sum(θ ⊙ H g)|, with g and H of the loss on softmax(logits / T).

    g is the gradient accumulated over n_batches (then divided by n_batches) and held fixed;
    H g is the gradient of g · ∇L(θ) over the same batches (a Hessian-vector product by
    double backpropagation). The temperature T = 200 of the reference keeps the softmax from
    saturating, so the Hessian term is not vanishingly small. The reference's re-init of
    Linear layers (xavier) before scoring is not reproduced: the criterion scores the model
    it is given.

    BatchNorm scores in train mode by default (batch statistics), as the authors' code does;
    the running statistics it updates meanwhile are restored afterwards, as are all modes.
    Other modules (dropout) score in eval mode either way, so scores stay deterministic.

    Args:
        sparsity: fraction of prunable weights to prune.
        n_batches: training batches used for g and H g.
        temperature: divides the logits in the loss (the reference's T).
        batch_norm: "train" (batch statistics, the authors') or "eval" (running statistics).
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def __init__(
        self,
        sparsity: float | None = None,
        *,
        n_batches: int = 1,
        temperature: float = 200.0,
        batch_norm: str = "train",
        **kwargs,
    ) -> None:
        super().__init__(sparsity, **kwargs)
        self.n_batches = check_n_batches(n_batches)
        self.temperature = float(check_positive("pruning.temperature", temperature, example="200"))
        if batch_norm not in BATCH_NORM_MODES:
            raise SweeplabError(
                f"pruning.batch_norm={batch_norm!r} is not one of {list(BATCH_NORM_MODES)}; "
                "use train (the authors') or eval"
            )
        self.batch_norm = batch_norm

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[Batch],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        data = take_batches(batches, self.n_batches, self.name)
        with scoring(model, params):
            if self.batch_norm == "train":
                # scoring() has set eval mode and restores modes and buffers on exit.
                for module in model.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.train()
            g = mean_gradient(model, params, data, self.temperature)
            hg = [torch.zeros_like(w) for w in params.values()]
            for batch in data:
                grads = batch_gradient(
                    model, params, batch, temperature=self.temperature, create_graph=True
                )
                flow = sum((gs * gf).sum() for gs, gf in zip(g.values(), grads, strict=True))
                # d(g · ∇L)/dθ = H g for the stopped g; allow_unused for weights off the graph.
                parts = torch.autograd.grad(flow, list(params.values()), allow_unused=True)
                hg = [h if p is None else h + p.detach() for h, p in zip(hg, parts, strict=True)]
        raw = {
            name: w.detach() * h / len(data)
            for (name, w), h in zip(params.items(), hg, strict=True)
        }
        norm = abs(sum(float(s.sum()) for s in raw.values())) + EPS
        return {name: s / norm for name, s in raw.items()}
