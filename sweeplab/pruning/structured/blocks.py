"""Whole residual-block removal (pruning entire layers), scored by each block's contribution."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from itertools import islice

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction, check_positive
from sweeplab.pruning.structured.criteria import Batches, StructuredPruner
from sweeplab.pruning.structured.groups import eval_mode


class BlockRemoval(StructuredPruner):
    """Remove whole residual blocks (entire layers), the least contributing first.

    A block opts in with a `bypass()` method returning what replaces it (sweeplab's ResNet
    blocks return their shortcut). Candidates are blocks whose bypass is an identity, plus
    the downsampling ones if include_downsample. Scores (lower = removed first):
    loss: mean rise of cross-entropy over num_batches batches when that block alone is
        bypassed (the lesion study of Veit et al. 2016), model in eval mode;
    norm: mean ||block(x) - bypass(x)|| / ||bypass(x)||, the residual's size relative to the
        signal it is added to; needs no labels and one pass.

    Args:
        ratio: fraction of the candidate blocks to remove, in [0, 1).
        score: "loss" or "norm".
        include_downsample: also remove blocks that change width or resolution.
        exclude: module names of blocks to keep.
        name: the strategy name recorded in rows.
        num_batches: training batches the score reads.
    """

    granularity = "block"

    def __init__(
        self,
        ratio: float = 0.2,
        score: str = "loss",
        include_downsample: bool = False,
        exclude: Sequence[str] = (),
        name: str | None = None,
        num_batches: int = 10,
        granularity: str = "block",
    ) -> None:
        if granularity != "block":
            raise SweeplabError(
                f"pruning.granularity={granularity!r}: block_removal removes blocks"
            )
        self.ratio = check_fraction("pruning.ratio", ratio, example="0.2")
        if score not in ("loss", "norm"):
            raise SweeplabError(f"pruning.score={score!r} is not one of ['loss', 'norm']")
        self.score, self.include_downsample = score, bool(include_downsample)
        self.exclude = [str(e) for e in exclude]
        self.name = name or "block_removal"
        self.num_batches = int(check_positive("pruning.num_batches", num_batches, integer=True))

    def candidates(self, model: nn.Module) -> dict[str, nn.Module]:
        """Removable blocks keyed by module name."""
        found = {
            n: m
            for n, m in model.named_modules()
            if callable(getattr(m, "bypass", None))
            and n not in self.exclude
            and (self.include_downsample or isinstance(m.bypass(), nn.Identity))
        }
        if not found:
            raise SweeplabError(
                f"model {type(model).__name__} has no removable residual block (a module with "
                "a bypass() method); use a ResNet model or a channel criterion"
            )
        return found

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        self.candidates(model)

    def select(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> list[str]:
        """Names of the blocks to remove, lowest score first (the model is unchanged)."""
        blocks = self.candidates(model)
        data = list(islice(batches, self.num_batches))
        if not data:
            raise SweeplabError("pruning=block_removal needs training batches but got none")
        with eval_mode(model), torch.no_grad():
            scores = (
                self._loss_rise(model, blocks, data)
                if self.score == "loss"
                else self._norm(model, blocks, data)
            )
        order = sorted(blocks, key=lambda n: (scores[n], list(blocks).index(n)))
        return order[: round(self.ratio * len(blocks))]

    @staticmethod
    def _loss(model: nn.Module, data: list[tuple[Tensor, Tensor]]) -> float:
        return sum(float(F.cross_entropy(model(x), y)) for x, y in data) / len(data)

    def _loss_rise(
        self, model: nn.Module, blocks: dict[str, nn.Module], data: list[tuple[Tensor, Tensor]]
    ) -> dict[str, float]:
        base = self._loss(model, data)
        rise = {}
        for name, block in blocks.items():
            _replace(model, name, block.bypass())
            rise[name] = self._loss(model, data) - base
            _replace(model, name, block)
        return rise

    @staticmethod
    def _norm(
        model: nn.Module, blocks: dict[str, nn.Module], data: list[tuple[Tensor, Tensor]]
    ) -> dict[str, float]:
        sums = dict.fromkeys(blocks, 0.0)

        def hook(name: str) -> Callable[..., None]:
            def record(module: nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> None:
                skip = module.bypass()(inputs[0])
                sums[name] += float((out - skip).norm() / skip.norm().clamp_min(1e-12))

            return record

        handles = [b.register_forward_hook(hook(n)) for n, b in blocks.items()]
        try:
            for x, _ in data:
                model(x)
        finally:
            for h in handles:
                h.remove()
        return {n: s / len(data) for n, s in sums.items()}

    def prune(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> nn.Module:
        """A copy of model with the selected blocks replaced by their bypass."""
        pruned = copy.deepcopy(model)
        for name in self.select(pruned, example_input, batches, generator):
            _replace(pruned, name, pruned.get_submodule(name).bypass())
        return pruned


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)
