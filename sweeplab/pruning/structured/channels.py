"""Channel pruning: remove a ratio of each group's (or all groups') lowest-scoring channels.

A ChannelPruner subclass only scores channels (`group_scores`, see
sweeplab.pruning.structured.criteria); this base turns scores into a plan for the scope:
layer: round(ratio * channels) in each group (per-group overrides in layer_ratio);
global: round(ratio * all channels) overall, lowest scores first, every group keeping >= 1.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction, check_positive
from sweeplab.pruning.strategy import Batches, ModelPruner
from sweeplab.pruning.structured.attention import attention_modules, owner
from sweeplab.pruning.structured.groups import (
    ROOT_TYPES,
    ChannelGroup,
    channel_groups,
    eval_mode,
    remove_channels,
)

SCOPES = ("global", "layer")
NORMALIZERS = ("none", "mean")


def _within(name: str, prefixes: Sequence[str]) -> bool:
    """Whether module `name` is one of `prefixes` or inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _has_masks(model: nn.Module) -> bool:
    return any(n.endswith("_orig") for n, _ in model.named_parameters())


class StructuredPruner(ModelPruner):
    """What the pipeline sees: prune() returns a smaller copy of the model (no masks).

    Attributes:
        name: strategy name recorded in rows.
        ratio: requested fraction of channels, neurons or blocks to remove.
        granularity: channel | neuron | block (the row's granularity).
    """


class ChannelPruner(StructuredPruner):
    """Base of channel/neuron criteria: a subclass scores channels in `group_scores`.

    Args:
        ratio: fraction of the prunable channels (or neurons) to remove, in [0, 1).
        scope: "layer" (the ratio in each group) or "global" (one ranking across groups).
        granularity: "channel" (conv filters) or "neuron" (Linear units).
        exclude: module names (or parents, e.g. "layer1") whose output channels stay, and so
            do all channels coupled to them (excluding a ResNet's stem keeps its whole
            stage-1 residual stream); their inputs still shrink when the layer before is
            pruned.
        layer_ratio: scope layer only: module name (or parent) -> ratio of the groups it
            outputs.
        normalize: scope global only: "mean" divides each group's scores by their mean, so
            layers of different fan-in compare; "none" ranks raw scores; None: the
            criterion's default (mean for weight norms, none for bn_scale and taylor_filter).
        name: the strategy name recorded in rows.
        num_batches: training batches a data-driven criterion reads.
    """

    default_normalize = "mean"

    def __init__(
        self,
        ratio: float = 0.5,
        scope: str = "layer",
        granularity: str = "channel",
        exclude: Sequence[str] = (),
        layer_ratio: Mapping[str, float] | None = None,
        normalize: str | None = None,
        name: str | None = None,
        num_batches: int = 10,
    ) -> None:
        normalize = self.default_normalize if normalize is None else normalize
        self.ratio = check_fraction("pruning.ratio", ratio, example="0.5")
        if scope not in SCOPES:
            raise SweeplabError(f"pruning.scope={scope!r} is not one of {list(SCOPES)}")
        if granularity not in ROOT_TYPES:
            raise SweeplabError(
                f"pruning.granularity={granularity!r} is not one of {list(ROOT_TYPES)}"
            )
        if normalize not in NORMALIZERS:
            raise SweeplabError(
                f"pruning.normalize={normalize!r} is not one of {list(NORMALIZERS)}"
            )
        self.layer_ratio = {
            str(k): check_fraction(f"pruning.layer_ratio.{k}", v)
            for k, v in (layer_ratio or {}).items()
        }
        if self.layer_ratio and scope != "layer":
            raise SweeplabError(
                "pruning.layer_ratio needs pruning.scope=layer; set pruning.scope=layer"
            )
        self.scope, self.granularity, self.normalize = scope, granularity, normalize
        self.exclude = [str(e) for e in exclude]
        self.name = name or type(self).__name__.lower()
        self.num_batches = int(check_positive("pruning.num_batches", num_batches, integer=True))

    def group_scores(
        self,
        model: nn.Module,
        groups: list[ChannelGroup],
        batches: Batches,
        generator: torch.Generator,
    ) -> list[Tensor | None]:
        """Importance of every channel of every group (higher = keep); None: leave the group.

        Args:
            model: the model being pruned, in eval mode.
            groups: its prunable groups.
            batches: training batches, for data-driven criteria.
            generator: seeded generator, for stochastic criteria.
        Returns:
            One 1-D score tensor (length group.size) or None per group.
        """
        raise NotImplementedError

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Refuse, before any training, a model or ratio this criterion cannot prune."""
        groups = self._groups(model, example_input)
        for group in groups:
            if self.scope == "layer":
                self._layer_k(group)
        members = [m for g in groups for m in g.members]
        idle = [k for k in self.layer_ratio if not any(_within(m, [k]) for m in members)]
        if idle:
            raise SweeplabError(
                f"pruning.layer_ratio names {idle}, which outputs no prunable group; choose "
                f"from {[g.name for g in groups]} (or their parents)"
            )

    def _groups(self, model: nn.Module, example_input: Tensor) -> list[ChannelGroup]:
        """The prunable groups left after `exclude`; errors name what to change."""
        if _has_masks(model):
            raise SweeplabError(
                "structured pruning got a model with unstructured masks attached; "
                "call remove_masks first or prune structurally before masking"
            )
        known = {n for n, _ in model.named_modules()}
        unknown = sorted((set(self.exclude) | set(self.layer_ratio)) - known)
        if unknown:
            raise SweeplabError(
                f"pruning.exclude/layer_ratio name unknown layers {unknown}; use module names"
            )
        groups = [
            g
            for g in channel_groups(model, example_input, self.granularity)
            if not any(_within(m, self.exclude) for m in g.members)
        ]
        attentions = attention_modules(model)
        heads = [g.name for g in groups if all(owner(m, attentions) for m in g.members)]
        if heads:  # single q/k/v channels: the heads left would mix what the old ones held
            raise SweeplabError(
                f"pruning={self.name} would remove single channels of attention heads (layer "
                f"{heads[0]}); remove whole heads with pruning=head_l1, or keep them with "
                f"pruning.exclude=[{','.join(attentions)}]"
            )
        if not groups:
            kind = "convolution" if self.granularity == "channel" else "Linear layer"
            raise SweeplabError(
                f"model {type(model).__name__} has no prunable {kind} group with "
                f"pruning.granularity={self.granularity}; use "
                f"granularity={'neuron' if self.granularity == 'channel' else 'channel'} "
                "or remove layers from pruning.exclude"
            )
        return groups

    def select(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> dict[str, list[int]]:
        """Which channels to remove: root layer name -> channel indices (the model is unchanged).

        Args:
            model: the model to score (gradients of its parameters are cleared afterwards).
            example_input: one batch on the model's device, for tracing.
            batches: training batches.
            generator: seeded generator.
        Returns:
            The plan for `remove_channels`.
        """
        groups = self._groups(model, example_input)
        try:
            with eval_mode(model):
                scores = self.group_scores(model, groups, batches, generator)
        finally:
            model.zero_grad(set_to_none=True)
        kept = [(g, s) for g, s in zip(groups, scores, strict=True) if s is not None]
        if self.scope == "layer":
            return {g.name: self._layer_pick(g, s) for g, s in kept}
        return self._global_pick(kept)

    def _layer_pick(self, group: ChannelGroup, scores: Tensor) -> list[int]:
        k = self._layer_k(group)
        return sorted(torch.argsort(scores, stable=True)[:k].tolist())

    def _layer_k(self, group: ChannelGroup) -> int:
        """Channels scope layer removes from `group`; error if that would empty it."""
        overrides = [
            r for k, r in self.layer_ratio.items() if any(_within(m, [k]) for m in group.members)
        ]
        ratio = overrides[0] if overrides else self.ratio
        k = round(ratio * group.size)
        if k >= group.size:
            key = f"pruning.layer_ratio.{group.name}" if overrides else "pruning.ratio"
            raise SweeplabError(
                f"{key}={ratio} would remove all {group.size} channels of layer {group.name}; "
                f"use a ratio below {(group.size - 0.5) / group.size:.3f} or exclude the layer"
            )
        return k

    def _global_pick(self, kept: list[tuple[ChannelGroup, Tensor]]) -> dict[str, list[int]]:
        if self.normalize == "mean":
            kept = [(g, s / s.mean().clamp_min(1e-12)) for g, s in kept]
        flat = torch.cat([s for _, s in kept])
        owner = torch.cat([torch.full((g.size,), i) for i, (g, _) in enumerate(kept)])
        local = torch.cat([torch.arange(g.size) for g, _ in kept])
        budget = round(self.ratio * len(flat))
        left = [g.size for g, _ in kept]
        plan: dict[str, list[int]] = {g.name: [] for g, _ in kept}
        for pos in torch.argsort(flat, stable=True).tolist():
            if budget == 0:
                break
            i = int(owner[pos])
            if left[i] > 1:  # every group keeps at least one channel
                plan[kept[i][0].name].append(int(local[pos]))
                left[i] -= 1
                budget -= 1
        return {name: sorted(idxs) for name, idxs in plan.items()}

    def prune(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> nn.Module:
        """A physically smaller copy of model (see StructuredPruner.prune)."""
        if _has_masks(model):
            raise SweeplabError(
                "structured pruning got a model with unstructured masks attached; "
                "call remove_masks first or prune structurally before masking"
            )
        pruned = copy.deepcopy(model)
        remove_channels(
            pruned, example_input, self.select(pruned, example_input, batches, generator)
        )
        return pruned
