"""Structured pruning: remove whole channels, neurons or residual blocks, physically.

Torch-Pruning's dependency graph finds every layer that shares a channel (a conv's filter,
its batch norm, the next layer's input slice, and all layers tied together by a residual
sum), so a removed channel disappears from all of them at once and residual sums stay
consistent. The result is a smaller dense model, finetuned like any other.

A *group* is one such set of coupled channels, named by its root layer (the first Conv or
Linear that produces it). Channel criteria score every channel of every group; the scope
decides how many each group loses:
layer: round(ratio * channels) in each group (per-group overrides in layer_ratio);
global: round(ratio * all channels) overall, lowest scores first, every group keeping >= 1.
The layer whose outputs are the model's outputs (the last Conv/Linear to run) is never pruned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import Tensor, nn
from torch_pruning.pruner import function as tp_function

from sweeplab.errors import SweeplabError, check_fraction
from sweeplab.models.resnet_cifar import ChannelShortcut

# Root layer types per granularity: channels of convolutions, neurons of linear layers.
ROOT_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "channel": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "neuron": (nn.Linear,),
}
WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
SCOPES = ("global", "layer")
NORMALIZERS = ("none", "mean")
Batches = Iterable[tuple[Tensor, Tensor]]


class _ShortcutPruner(tp_function.BasePruningFunc):
    """Teaches Torch-Pruning the option-A shortcut: its in and out channels are independent."""

    TARGET_MODULES = (ChannelShortcut,)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        drop = set(idxs)
        layer.index = layer.index[[i for i in range(len(layer.index)) if i not in drop]]
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        # Outputs that copied a removed input become zero channels, as if it had been zeroed.
        drop = set(idxs)
        kept = [i for i in range(layer.in_channels) if i not in drop]
        position = torch.full((layer.in_channels + 1,), len(kept), dtype=torch.long)
        position[kept] = torch.arange(len(kept))
        layer.index = position.to(layer.index.device)[layer.index]
        layer.in_channels = len(kept)
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return len(layer.index)

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels


@dataclass
class ChannelGroup:
    """One set of coupled channels: its root layer and every named module that outputs them."""

    name: str  # root layer's module name
    size: int  # channels now
    # (module name, module, local channel indices, root channel indices) per output module.
    outputs: list[tuple[str, nn.Module, list[int], list[int]]]

    @property
    def members(self) -> list[str]:
        """Names of the modules whose outputs lose a removed channel."""
        return [name for name, *_ in self.outputs]

    def producers(self, types: tuple[type, ...]) -> list[tuple[nn.Module, list[int], list[int]]]:
        """(module, local indices, root indices) of the output modules of the given types."""
        return [(m, i, r) for _, m, i, r in self.outputs if isinstance(m, types)]

    def scatter(self, values: Iterable[tuple[Tensor, list[int]]]) -> Tensor:
        """Sum per-module channel values into one score per root channel."""
        out = torch.zeros(self.size)
        for local, root in values:
            out.index_add_(0, torch.tensor(root), local.detach().float().cpu())
        return out


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (tracing must not move batch-norm statistics), the old mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(
            model,
            example_inputs=example_input,
            customized_pruners={ChannelShortcut: _ShortcutPruner()},
            verbose=False,
        )


def _output_layer(model: nn.Module, example_input: Tensor) -> str:
    """Name of the last Conv/Linear to run: its outputs are the classes and must stay."""
    order: list[str] = []
    hooks = [
        m.register_forward_hook(lambda *_, n=name: order.append(n))
        for name, m in model.named_modules()
        if isinstance(m, WEIGHT_TYPES)
    ]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise SweeplabError(
            f"model {type(model).__name__} has no Conv or Linear layer to prune structurally"
        )
    return order[-1]


def channel_groups(
    model: nn.Module, example_input: Tensor, granularity: str = "channel"
) -> list[ChannelGroup]:
    """Every prunable group of coupled channels, in module order (output layer left out).

    Args:
        model: any nn.Module whose forward takes example_input.
        example_input: one batch on the model's device, for tracing.
        granularity: "channel" (groups rooted at convolutions) or "neuron" (at Linear layers).
    Returns:
        The groups, each with its current size.
    """
    if granularity not in ROOT_TYPES:
        raise SweeplabError(f"pruning.granularity={granularity!r} is not one of {list(ROOT_TYPES)}")
    with _eval_mode(model):
        output = model.get_submodule(_output_layer(model, example_input))
        graph = _graph(model, example_input)
    names = {m: n for n, m in model.named_modules()}
    groups = []
    for group in graph.get_all_groups(
        ignored_layers=[output], root_module_types=ROOT_TYPES[granularity]
    ):
        outputs = [
            (
                names[item.dep.target.module],
                item.dep.target.module,
                list(item.idxs),
                list(item.root_idxs),
            )
            for item in group
            if item.dep.target.module in names and graph.is_out_channel_pruning_fn(item.dep.handler)
        ]
        root = group[0].dep.target.module
        groups.append(ChannelGroup(names[root], graph.get_out_channels(root), outputs))
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(groups, key=lambda g: order[g.name])


def remove_channels(
    model: nn.Module, example_input: Tensor, plan: Mapping[str, Sequence[int]]
) -> None:
    """Physically remove channels in place: plan maps a group's root layer to channel indices.

    Args:
        model: the model to shrink (edited in place).
        example_input: one batch on the model's device, for tracing.
        plan: root module name -> indices of that group's channels to remove.
    """
    with _eval_mode(model):
        graph = _graph(model, example_input)
    for name, idxs in plan.items():
        if not idxs:
            continue
        root = model.get_submodule(name)
        pruner = graph.get_pruner_of_module(root)
        group = graph.get_pruning_group(
            root, pruner.prune_out_channels, sorted(int(i) for i in idxs)
        )
        if not graph.check_pruning_group(group):
            raise SweeplabError(f"removing {len(idxs)} channels of layer {name} would empty it")
        group.prune(record_history=False)


def _within(name: str, prefixes: Sequence[str]) -> bool:
    """Whether module `name` is one of `prefixes` or inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _has_masks(model: nn.Module) -> bool:
    return any(n.endswith("_orig") for n, _ in model.named_parameters())


class StructuredPruner:
    """What the pipeline sees: prune() returns a smaller copy of the model (no masks).

    Attributes:
        name: strategy name recorded in rows.
        ratio: requested fraction of channels, neurons or blocks to remove.
        granularity: channel | neuron | block (the row's granularity).
    """

    name: str
    ratio: float
    granularity: str

    def prune(
        self,
        model: nn.Module,
        example_input: Tensor,
        batches: Batches,
        generator: torch.Generator,
    ) -> nn.Module:
        """A physically smaller copy of model; the model itself is left as it was.

        Args:
            model: the trained dense model (no masks attached).
            example_input: one batch on the model's device, for tracing.
            batches: training batches, for data-driven criteria.
            generator: seeded generator, for stochastic criteria.
        Returns:
            The pruned copy.
        """
        raise NotImplementedError

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Raise SweeplabError if this pruner cannot prune `model`; run before dense training."""


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
        self.num_batches = int(num_batches)

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
            with _eval_mode(model):
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

    Train the dense model with `train.bn_l1` (sweeplab.lit.bn_l1_penalty) in the loss so
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
        self.num_batches = int(num_batches)

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
        with _eval_mode(model), torch.no_grad():
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


def removed_fraction(dense: nn.Module, pruned: nn.Module) -> float:
    """Fraction of Conv/Linear weights that structured pruning removed (vs the dense model)."""

    def count(m: nn.Module) -> int:
        return sum(x.weight.numel() for x in m.modules() if isinstance(x, WEIGHT_TYPES))

    return 1.0 - count(pruned) / count(dense)


def widths(model: nn.Module) -> dict[str, int]:
    """Output channels (Conv) or features (Linear) of every layer, keyed by module name."""
    return {
        n: int(m.weight.shape[0]) for n, m in model.named_modules() if isinstance(m, WEIGHT_TYPES)
    }


def layer_removed(dense: nn.Module, pruned: nn.Module) -> dict[str, float]:
    """Fraction of each Conv/Linear weight removed, keyed "name.weight" like masks (gone: 1.0)."""
    after = {
        f"{n}.weight": m.weight.numel()
        for n, m in pruned.named_modules()
        if isinstance(m, WEIGHT_TYPES)
    }
    return {
        f"{n}.weight": 1.0 - after.get(f"{n}.weight", 0) / m.weight.numel()
        for n, m in dense.named_modules()
        if isinstance(m, WEIGHT_TYPES)
    }
