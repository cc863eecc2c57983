"""SynFlow (Tanaka et al. 2020): data-free, iterative conservation of synaptic flow.

Followed: the paper's Algorithm 1 and Synaptic-Flow's code (ganguli-lab/Synaptic-Flow,
Pruners/pruners.py SynFlow and prune.py prune_loop with the exponential schedule).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_positive
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target
from sweeplab.pruning.gradient import Batch
from sweeplab.pruning.masks import prunable_parameters, remove_masks


def _linearized_copy(model: nn.Module, names: Iterable[str]) -> nn.Module:
    """A float64 copy of model with |θ| for every parameter and buffer, in eval mode.

    Attached masks are made permanent in the copy (masked weights are zero). Eval mode so
    BatchNorm applies its (absolute) running statistics instead of batch statistics of the
    all-ones input, as the paper prescribes. Double precision because the synaptic flow is a
    product over layers and overflows or underflows float32 in deep networks.
    """
    # A forward with masks attached leaves `weight` = weight_orig * mask as a plain non-leaf
    # attribute, which deepcopy refuses; it is recomputed from weight_orig anyway.
    memo = {
        id(value): value.detach().clone()
        for module in model.modules()
        for value in vars(module).values()
        if isinstance(value, Tensor) and not value.is_leaf
    }
    net = copy.deepcopy(model, memo)
    remove_masks(net)
    net.double().eval()
    with torch.no_grad():
        for tensor in [*net.parameters(), *net.buffers()]:
            if tensor.is_floating_point():
                tensor.abs_()
    for p in net.parameters():
        p.requires_grad_(False)
    for name in names:
        net.get_parameter(name).requires_grad_(True)
    return net


def _flow_scores(
    net: nn.Module, names: list[str], input_shape: tuple[int, ...]
) -> dict[str, Tensor]:
    """|θ ⊙ dR/dθ| with R the sum of the outputs for an all-ones input, normalized by the max.

    Normalized in float64 by the largest score so the values fit float32, to which the
    thresholding converts them; only ranks matter.
    """
    weights = [net.get_parameter(n) for n in names]
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=weights[0].device)
    with torch.enable_grad():
        flow = net(ones).sum()
        grads = torch.autograd.grad(flow, weights, allow_unused=True)
    scores = {
        n: torch.zeros_like(w) if g is None else (w.detach() * g).abs()
        for n, w, g in zip(names, weights, grads, strict=True)
    }
    top = max(float(s.max()) for s in scores.values())
    return {n: s / top for n, s in scores.items()} if top > 0 else scores


def _input_shape(batches: Iterable[Batch]) -> tuple[int, ...]:
    for x, _ in batches:
        return tuple(x.shape[1:])
    raise SweeplabError(
        "pruning=synflow needs one batch to learn the input shape (its values are not used); "
        "give it a non-empty training split"
    )


ROUNDINGS = ("floor", "round")


class SynFlow(Pruner):
    """Score = |θ ⊙ dR/dθ| of the linearized network; masks by `rounds` of re-scoring.

    Data-free: only the shape of one training batch is read. The network is linearized
    (|θ|, float64, eval mode) on a copy, so the caller's model is never touched. masks()
    prunes over `rounds` rounds with the exponential schedule: after round r the density
    (relative to the weights that survive earlier masks) is (1 - share)^(r / rounds), each
    round re-scoring the network with the masks so far, where share is the fraction of those
    survivors the target prunes. Intermediate rounds prune floor(share_r * survivors) as the
    reference does (rounding="round" rounds them); the last round prunes exactly that share,
    rounded, so the counts equal a one-shot prune's. With a threshold or quality
    mode, the masks come from one round of scores (the iteration needs a target count). A
    pattern or distribution applies to every round (an N:M pattern tightens round by round).

    Args:
        sparsity: fraction of prunable weights to prune.
        rounds: pruning iterations (the paper uses 100).
        rounding: how intermediate rounds count: "floor" (the reference's int()) or "round".
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def __init__(
        self, sparsity: float | None = None, *, rounds: int = 100, rounding: str = "floor", **kwargs
    ) -> None:
        super().__init__(sparsity, **kwargs)
        self.rounds = int(check_positive("pruning.rounds", rounds, integer=True))
        if rounding not in ROUNDINGS:
            raise SweeplabError(
                f"pruning.rounding={rounding!r} is not one of {list(ROUNDINGS)}; "
                "use floor (the reference's)"
            )
        self.rounding = rounding

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[Batch],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        net = _linearized_copy(model, params)
        return _flow_scores(net, list(params), _input_shape(batches))

    def masks(
        self,
        model: nn.Module,
        batches: Iterable[Batch],
        generator: torch.Generator,
        *,
        target: Target | None = None,
        existing: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Masks after `rounds` rounds of SynFlow pruning (see the class docstring).

        Args:
            model: the model to score; left untouched.
            batches: training batches; only the first one's shape is read.
            generator: unused (SynFlow is deterministic).
            target: the sparsity to reach (default: this pruner's, in one step).
            existing: masks of earlier steps; what they prune stays pruned.
        Returns:
            name -> float mask (1 keep, 0 prune), covering every prunable weight.
        """
        if self.threshold is not None or self.quality is not None:
            return super().masks(model, batches, generator, target=target, existing=existing)
        names = list(prunable_parameters(model, self.exclude))
        shape = _input_shape(batches)
        net = _linearized_copy(model, names)
        weights = {n: net.get_parameter(n) for n in names}
        current = {n: m.to(weights[n].device) for n, m in (existing or {}).items() if n in weights}
        total = sum(w.numel() for w in weights.values())
        survivors = None if existing is None else sum(int(m.sum()) for m in existing.values())
        rate = self.target(target).share(total, survivors)
        kept = 1.0 if survivors is None else survivors / total  # before this step
        rounds = self.rounds if rate > 0 else 1
        masks: dict[str, Tensor] = {}
        for r in range(1, rounds + 1):
            with torch.no_grad():
                for name, mask in current.items():
                    weights[name].mul_(mask.to(weights[name].dtype))
            scores = _flow_scores(net, names, shape)
            # Entries pruned in earlier rounds stay pruned: -inf sorts them first.
            for name, mask in current.items():
                scores[name] = scores[name].masked_fill(mask == 0, float("-inf"))
            # Shares are relative to `existing`'s survivors. Intermediate rounds count as
            # Synaptic-Flow's prune_loop and _global_mask do: density d^(r/R) with d = 1 - rate,
            # pruned = int((1 - density) * n). The last round prunes exactly `rate`, rounded as
            # every criterion's one-shot prune is, so runs compare at equal sparsity.
            last = r == rounds
            share = rate if last else 1.0 - (1.0 - rate) ** (r / rounds)
            floor = not last and self.rounding == "floor"
            step = Target(1.0 - (1.0 - share) * kept, share, floor=floor)
            masks = self.select(scores, step, existing)
            current = masks
        return masks
