"""Coupled channels: which layers share a channel, and removing channels physically.

Torch-Pruning's dependency graph finds every layer that shares a channel (a conv's filter,
its batch norm, the next layer's input slice, and all layers tied together by a residual
sum), so a removed channel disappears from all of them at once and residual sums stay
consistent. The result is a smaller dense model.

A *group* is one such set of coupled channels, named by its root layer (the first Conv or
Linear that produces it). The layer whose outputs are the model's outputs (the last
Conv/Linear to run) is never in a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch_pruning as tp
from torch import Tensor, nn
from torch_pruning.pruner import function as tp_function

from sweeplab.errors import SweeplabError

# Root layer types per granularity: channels of convolutions, neurons of linear layers.
ROOT_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "channel": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "neuron": (nn.Linear,),
}
WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@runtime_checkable
class ChannelRouter(Protocol):
    """A parameter-free module that routes input channels to output channels.

    Output channel o copies input channel `index[o]`; the value `in_channels` stands for a
    zero channel (padding). A ResNet's option-A shortcut is one
    (sweeplab.models.resnet_cifar.ChannelShortcut). Removing channels edits `index` and
    `in_channels`, so the routing stays right; any module with these two attributes is
    pruned this way, and the model library needs to know nothing of pruning.
    """

    index: Tensor
    in_channels: int


def _is_router(module: nn.Module) -> bool:
    return (
        isinstance(module, ChannelRouter)
        and isinstance(module.index, Tensor)
        and not isinstance(module, WEIGHT_TYPES)
    )


class _RouterPruner(tp_function.BasePruningFunc):
    """Teaches Torch-Pruning a ChannelRouter: its in and out channels are independent."""

    def __init__(self, types: tuple[type[nn.Module], ...]) -> None:
        super().__init__()
        self.TARGET_MODULES = types

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
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (tracing must not move batch-norm statistics), the old mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    # One pruner per router type in this model (Torch-Pruning matches modules by type).
    types = tuple(dict.fromkeys(type(m) for m in model.modules() if _is_router(m)))
    pruner = _RouterPruner(types)
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(
            model,
            example_inputs=example_input,
            customized_pruners=dict.fromkeys(types, pruner),
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
    with eval_mode(model):
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
    with eval_mode(model):
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
