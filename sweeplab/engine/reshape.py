"""A freshly built model shaped like a structurally pruned one, from the pruned tensors' shapes.

Structured pruning removes residual blocks (each replaced by its bypass) and channels (every
layer coupled to them shrinks together). Which channels went does not matter here: the saved
tensors replace all of them. So a fresh dense model gets the same removals with the right
counts: blocks whose tensors are absent are bypassed, then each group of coupled channels
loses its last channels until its root layer has the saved width. Loading the saved state
strictly afterwards checks every shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from sweeplab.errors import SweeplabError


def _bypass_missing_blocks(model: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Replace each block (a module with bypass()) none of whose tensors are saved."""
    for name, block in list(model.named_modules()):
        if not name or not callable(getattr(block, "bypass", None)):
            continue
        own = [f"{name}.{k}" for k in block.state_dict()]
        if own and not any(k in state for k in own):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, block.bypass())


def _shrink_channels(model: nn.Module, state: Mapping[str, Tensor], example: Tensor) -> None:
    """Remove each channel group's last channels down to its root layer's saved width."""
    from sweeplab.pruning.structured.groups import channel_groups, remove_channels

    for granularity in ("channel", "neuron"):
        plan = {}
        for group in channel_groups(model, example, granularity):
            saved = state.get(f"{group.name}.weight")
            if saved is None:
                continue
            width = int(saved.shape[0])
            if not 0 < width <= group.size:
                raise SweeplabError(
                    f"saved weights give layer {group.name} {width} channels, the model "
                    f"has {group.size}: they are not this model's"
                )
            plan[group.name] = list(range(width, group.size))
        if any(plan.values()):
            remove_channels(model, example, plan)


def shape_like(model: nn.Module, state: Mapping[str, Tensor], example: Tensor) -> nn.Module:
    """Shrink model in place to the shapes of a structurally pruned state dict; return it.

    Args:
        model: a freshly built dense model of the run's config.
        state: the pruned model's tensors (shippable state dict).
        example: one input batch, for tracing the model's channel dependencies.
    """
    _bypass_missing_blocks(model, state)
    current = model.state_dict()
    if any(k in current and current[k].shape != v.shape for k, v in state.items()):
        _shrink_channels(model, state, example)
    return model
