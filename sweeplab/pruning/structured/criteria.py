"""Structured pruning criteria: score whole channels or neurons, which are removed physically.

Channel criteria score every channel of every group of coupled channels
(sweeplab.pruning.structured.groups); ChannelPruner (sweeplab.pruning.structured.channels)
decides by the scope how many each group loses. The result is a smaller dense model,
finetuned like any other. Whole residual blocks: sweeplab.pruning.structured.blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.pruning.strategy import Batches
from sweeplab.pruning.structured.channels import ChannelPruner, StructuredPruner
from sweeplab.pruning.structured.groups import BN_TYPES, WEIGHT_TYPES, ChannelGroup

__all__ = [
    "BNScale",
    "Batches",
    "ChannelPruner",
    "L1Filter",
    "L2Filter",
    "RandomFilter",
    "StructuredPruner",
    "TaylorFilter",
]


def _weight_rows(module: nn.Module, idxs: list[int]) -> Tensor:
    """Output-channel rows of a Conv/Linear weight, flattened: (len(idxs), fan_in)."""
    return module.weight.detach()[idxs].flatten(1)


class L1Filter(ChannelPruner):
    """Li et al. 2017: sum of |w| of each output filter (summed over coupled layers)."""

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        return [
            g.scatter((_weight_rows(m, i).abs().sum(1), r) for m, i, r in g.producers(WEIGHT_TYPES))
            for g in groups
        ]


class L2Filter(ChannelPruner):
    """L2 norm of each output filter (over all coupled layers' filters)."""

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        return [
            g.scatter(
                (_weight_rows(m, i).pow(2).sum(1), r) for m, i, r in g.producers(WEIGHT_TYPES)
            ).sqrt()
            for g in groups
        ]


class RandomFilter(ChannelPruner):
    """Uniform random channel scores from the seeded generator: the baseline to beat."""

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        return [torch.rand(g.size, generator=generator) for g in groups]


def _require_batch_norm(model: nn.Module) -> None:
    if not any(isinstance(m, BN_TYPES) for m in model.modules()):
        raise SweeplabError(
            f"pruning=bn_scale needs batch norm layers but model {type(model).__name__} "
            "has none; use a model with batch norm (model.batch_norm=true for mlp) or "
            "another criterion, e.g. l1_filter"
        )


class BNScale(ChannelPruner):
    """Network slimming (Liu et al. 2017): |gamma| of the channel's batch norm.

    Train the dense model with `train.bn_l1` (engine.penalties.bn_l1_penalty) in the loss so
    unneeded scales go to zero; rank
    globally with raw scores (normalize: none), as in the paper. Groups without a batch norm
    (e.g. a plain Linear layer) are left alone.
    """

    default_normalize = "none"

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        _require_batch_norm(model)
        super().check(model, example_input)

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        _require_batch_norm(model)
        return [
            g.scatter((m.weight.detach()[i].abs(), r) for m, i, r in g.producers(BN_TYPES))
            if g.producers(BN_TYPES)
            else None
            for g in groups
        ]


class TaylorFilter(ChannelPruner):
    """Molchanov et al. 2019: (sum over a channel's parameters of w * dL/dw)^2, batch-averaged.

    The sum runs over the channel's batch-norm scale and shift when it has one (the paper's
    best variant, "Taylor FO on BN": a BN-normalized filter's own weights have sum w*g = 0 by
    scale invariance), else over its filter weights and bias. The square is taken per batch,
    then averaged over `num_batches` batches; the loss is cross-entropy, in eval mode.
    Scores estimate a loss change, comparable across layers: normalize defaults to none.
    """

    default_normalize = "none"

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        totals = [torch.zeros(g.size) for g in groups]
        used = 0
        for x, y in islice(batches, self.num_batches):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            for g, total in zip(groups, totals, strict=True):
                total += g.scatter(self._contributions(g)).pow(2)
            used += 1
        if used == 0:
            raise SweeplabError("pruning=taylor_filter needs training batches but got none")
        return [t / used for t in totals]

    @staticmethod
    def _contributions(group: ChannelGroup) -> Iterable[tuple[Tensor, list[int]]]:
        norms = group.producers(BN_TYPES)
        for module, idxs, root in norms or group.producers(WEIGHT_TYPES):
            params = [module.weight, module.bias]
            total = torch.zeros(len(idxs), device=module.weight.device)
            for p in params:
                if p is not None and p.grad is not None:
                    total += (p.detach()[idxs] * p.grad[idxs]).reshape(len(idxs), -1).sum(1)
            yield total, root
