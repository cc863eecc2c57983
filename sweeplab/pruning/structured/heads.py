"""Transformer pruning: remove whole attention heads and MLP hidden units; the embedding stays.

An attention module is any module with integer `num_heads` and `head_dim` attributes whose
query, key and value projections are separate nn.Linear layers of num_heads * head_dim outputs,
head h owning outputs [h * head_dim, (h + 1) * head_dim) (sweeplab.models.vit.Attention; a
fused qkv layer is refused). Torch-Pruning's dependency graph couples q, k and v (through the
q k^T and attn v products) and the output projection's inputs, so one head is removed from
all four layers at once. MLP hidden units are every other group of coupled Linear outputs
except the residual stream (the group an attention's output projection writes to): its
width, the embedding dimension, is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction
from sweeplab.pruning.strategy import Batches
from sweeplab.pruning.structured.attention import attention_modules, owner
from sweeplab.pruning.structured.channels import SCOPES, StructuredPruner, _has_masks, _within
from sweeplab.pruning.structured.groups import (
    WEIGHT_TYPES,
    ChannelGroup,
    channel_groups,
    remove_channels,
)


@dataclass
class Units:
    """Prunable units of one layer: heads of an attention module or hidden units of an MLP."""

    kind: str  # "head" | "mlp"
    layer: str  # the attention module, or the MLP group's root layer
    group: ChannelGroup  # the coupled output channels the units are made of
    width: int  # channels per unit: head_dim for heads, 1 for MLP units

    @property
    def size(self) -> int:
        return self.group.size // self.width

    def channels(self, units: Sequence[int]) -> list[int]:
        """The group's channel indices of the given units."""
        return [u * self.width + i for u in units for i in range(self.width)]


def transformer_units(model: nn.Module, example_input: Tensor) -> list[Units]:
    """Heads of every attention module and hidden units of every MLP, in module order.

    A group of coupled Linear outputs all inside one attention module is its q, k, v (their
    outputs are the heads); a group reaching into an attention module and beyond is the
    residual stream (the output projection writes to it) and is kept; any other group is
    an MLP's hidden units.
    """
    attentions = attention_modules(model)
    if not attentions:
        raise SweeplabError(
            f"pruning=head_l1 needs attention modules (with num_heads and head_dim) but model "
            f"{type(model).__name__} has none; use model=vit, or neuron_l1 / l1_filter"
        )
    units = []
    for group in channel_groups(model, example_input, "neuron"):
        owners = {owner(m, attentions) for m in group.members}
        if owners == {None}:
            units.append(Units("mlp", group.name, group, 1))
        elif len(owners) == 1:
            (name,) = owners
            attn = attentions[name]
            if group.size != attn.num_heads * attn.head_dim:
                raise SweeplabError(
                    f"attention module {name} has outputs {group.members} of {group.size} "
                    f"channels, not num_heads * head_dim = {attn.num_heads * attn.head_dim}; "
                    "head pruning needs separate q, k, v Linear layers (a fused qkv is not "
                    "supported): use model=vit or split the projections"
                )
            units.append(Units("head", name, group, attn.head_dim))
    missing = sorted(set(attentions) - {u.layer for u in units if u.kind == "head"})
    if missing:
        raise SweeplabError(
            f"found no q, k, v layers of attention modules {missing}; head pruning needs "
            "separate q, k, v Linear layers inside the module"
        )
    return units


class HeadL1(StructuredPruner):
    """Remove whole attention heads and MLP hidden units with the smallest sum |w|.

    A head's score is the sum of |w| over its rows of q, k and v, an MLP unit's over its row
    of the layer that outputs it (as l1_filter scores a filter). The model stays a
    transformer of the same embedding dimension with fewer heads per attention module and
    fewer hidden units per MLP.

    Args:
        ratio: fraction of the heads to remove, in [0, 1).
        mlp_ratio: fraction of the MLP hidden units to remove; None: ratio; 0: heads only.
        scope: "layer" (the ratios in every attention module and MLP) or "global" (heads
            ranked across modules by score / the module's mean score, each keeping >= 1
            head; MLP units likewise).
        exclude: module names (or parents, e.g. "blocks.0") whose heads and units stay.
        name: the strategy name recorded in rows.
        granularity: must be "head".
    """

    def __init__(
        self,
        ratio: float = 0.5,
        mlp_ratio: float | None = None,
        scope: str = "layer",
        exclude: Sequence[str] = (),
        name: str | None = None,
        granularity: str = "head",
    ) -> None:
        if granularity != "head":
            raise SweeplabError(
                f"pruning.granularity={granularity!r}: head_l1 removes heads; remove the key"
            )
        self.granularity = "head"
        self.ratio = check_fraction("pruning.ratio", ratio, example="0.5")
        self.mlp_ratio = (
            self.ratio
            if mlp_ratio is None
            else check_fraction("pruning.mlp_ratio", mlp_ratio, example="0.5")
        )
        if scope not in SCOPES:
            raise SweeplabError(f"pruning.scope={scope!r} is not one of {list(SCOPES)}")
        self.scope = scope
        self.exclude = [str(e) for e in exclude]
        self.name = name or "head_l1"

    def _units(self, model: nn.Module, example_input: Tensor) -> list[Units]:
        if _has_masks(model):
            raise SweeplabError(
                "structured pruning got a model with unstructured masks attached; "
                "call remove_masks first or prune structurally before masking"
            )
        unknown = sorted(set(self.exclude) - {n for n, _ in model.named_modules()})
        if unknown:
            raise SweeplabError(f"pruning.exclude names unknown layers {unknown}; use module names")
        units = transformer_units(model, example_input)
        return [
            u
            for u in units
            if not _within(u.layer, self.exclude)
            and not any(_within(m, self.exclude) for m in u.group.members)
        ]

    def _ratio(self, units: Units) -> tuple[str, float]:
        return ("pruning.ratio", self.ratio) if units.kind == "head" else (
            "pruning.mlp_ratio", self.mlp_ratio
        )  # fmt: skip

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Refuse, before any training, a model without attention or a ratio that empties one."""
        for units in self._units(model, example_input):
            key, ratio = self._ratio(units)
            if self.scope == "layer" and round(ratio * units.size) >= units.size:
                what = "heads" if units.kind == "head" else "hidden units"
                raise SweeplabError(
                    f"{key}={ratio} would remove all {units.size} {what} of {units.layer}; "
                    f"use a ratio below {(units.size - 0.5) / units.size:.3f}"
                )

    @staticmethod
    def scores(units: Units) -> Tensor:
        """Sum |w| of each unit's output rows over the layers that output it."""
        per_channel = units.group.scatter(
            (m.weight.detach()[i].flatten(1).abs().sum(1), r)
            for m, i, r in units.group.producers(WEIGHT_TYPES)
        )
        return per_channel.view(units.size, units.width).sum(1)

    def _plan(self, all_units: list[Units]) -> dict[str, list[int]]:
        plan: dict[str, list[int]] = {}
        for kind in ("head", "mlp"):
            units = [u for u in all_units if u.kind == kind]
            if not units:
                continue
            ratio = self._ratio(units[0])[1]
            scores = [self.scores(u) for u in units]
            if self.scope == "layer":
                picks = [
                    torch.argsort(s, stable=True)[: round(ratio * u.size)].tolist()
                    for u, s in zip(units, scores, strict=True)
                ]
            else:
                picks = _global_pick([u.size for u in units], scores, ratio)
            for u, pick in zip(units, picks, strict=True):
                plan[u.group.name] = sorted(u.channels(pick))
        return plan

    def select(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> dict[str, list[int]]:
        """Which channels to remove: group root layer -> channel indices (model unchanged)."""
        return self._plan(self._units(model, example_input))

    def prune(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> nn.Module:
        """A copy of model with the lowest-scoring heads and MLP units removed physically."""
        pruned = copy.deepcopy(model)
        units = self._units(pruned, example_input)
        remove_channels(pruned, example_input, self._plan(units))
        for u in units:
            if u.kind == "head":  # the group's sizes are from before: read q's width now
                left = pruned.get_submodule(u.group.members[0]).out_features // u.width
                _count_heads(pruned.get_submodule(u.layer), left, u.layer)
        return pruned


def _count_heads(attn: nn.Module, left: int, name: str) -> None:
    """Make attn.num_heads say `left` (a plain attribute is set; a property must agree)."""
    if not isinstance(getattr(type(attn), "num_heads", None), property):
        attn.num_heads = left
    if attn.num_heads != left:
        raise SweeplabError(
            f"attention module {name} has {left} heads left but num_heads says "
            f"{attn.num_heads}; make num_heads an attribute or read it from q's width"
        )


def _global_pick(sizes: list[int], scores: list[Tensor], ratio: float) -> list[list[int]]:
    """Units to remove per layer: round(ratio * all units) of the lowest score / layer mean,
    each layer keeping at least one."""
    flat = torch.cat([s / s.mean().clamp_min(1e-12) for s in scores])
    layer_of = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    local = torch.cat([torch.arange(n) for n in sizes])
    budget, left = round(ratio * len(flat)), list(sizes)
    picks: list[list[int]] = [[] for _ in sizes]
    for pos in torch.argsort(flat, stable=True).tolist():
        if budget == 0:
            break
        i = int(layer_of[pos])
        if left[i] > 1:
            picks[i].append(int(local[pos]))
            left[i] -= 1
            budget -= 1
    return picks
