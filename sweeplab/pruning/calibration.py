"""Calibration for post-training criteria (Wanda, SparseGPT): the examples, the order in which
layers run, and each layer's inputs as rows of input features.

A layer's input features are what its weight columns multiply: a Linear's in_features; a
Conv2d's unfolded patches (in_channel x kernel position, nn.Unfold's order, which is the order
of weight.flatten(1)), one row per example and output position. Layers are calibrated one at a
time in forward order, each on inputs computed through the model as it is at that moment, so
a caller that has pruned the earlier layers gets inputs through the pruned layers (the
references' sequential block-by-block passes, with every prunable layer its own block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab.errors import SweeplabError, check_positive

CALIBRATED_TYPES = (nn.Linear, nn.Conv2d)


def check_calibration(value: object) -> int:
    """pruning.calibration as a positive integer, else SweeplabError naming it and the fix."""
    return int(check_positive("pruning.calibration", value, integer=True, example="128"))


def examples(batches: Iterable[tuple[Tensor, Tensor]], n: int) -> list[Tensor]:
    """The first n inputs of `batches`, as those batches (the last one cut); fewer if the
    batches hold fewer. Refuses empty batches."""
    chunks, taken = [], 0
    for x, _ in batches:
        if taken >= n:
            break
        chunks.append(x[: n - taken])
        taken += len(chunks[-1])
    if taken == 0:
        raise SweeplabError(
            "calibration needs a non-empty training split; check data.* (the training split "
            "the run's batches come from is empty)"
        )
    return chunks


def check_layers(model: nn.Module, names: Sequence[str], criterion: str) -> None:
    """Refuse prunable layers this calibration cannot unfold (Conv1d/3d, grouped convs)."""
    for name in names:
        module_name = name.rsplit(".", 1)[0]
        module = model.get_submodule(module_name)
        if not isinstance(module, CALIBRATED_TYPES):
            kind = type(module).__name__
            raise SweeplabError(
                f"pruning={criterion} calibrates Linear and Conv2d layers; layer {module_name} "
                f"is a {kind}: add it to pruning.exclude, e.g. pruning.exclude=[{module_name}]"
            )
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            raise SweeplabError(
                f"pruning={criterion} calibrates ungrouped convolutions; layer {module_name} has "
                f"groups={module.groups}: add it to pruning.exclude=[{module_name}]"
            )


def features(module: nn.Module, inputs: Tensor) -> Tensor:
    """A layer's inputs as rows of input features, shape (rows, weight.flatten(1).shape[1]).

    Linear: every leading index is a row. Conv2d: padded as the layer pads (any padding_mode,
    also padding="same"), unfolded with its kernel, dilation and stride; one row per example
    and output position, columns (in_channel, kernel row, kernel column).
    """
    if isinstance(module, nn.Linear):
        return inputs.reshape(-1, inputs.shape[-1])
    if isinstance(module, nn.Conv2d):
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        padded = F.pad(inputs, module._reversed_padding_repeated_twice, mode=mode)
        patches = F.unfold(padded, module.kernel_size, module.dilation, 0, module.stride)
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])
    raise TypeError(f"no input features for a {type(module).__name__}")


class _Reached(Exception):
    """Raised by a forward pre-hook to stop the forward pass once the layer's input is seen."""


def forward_order(model: nn.Module, names: Sequence[str], x: Tensor) -> list[str]:
    """Parameter names sorted by when their module first runs in model(x); SweeplabError for
    a module the forward pass never calls (it has no calibration inputs)."""
    seen: list[str] = []
    handles = []
    for name in names:
        module = model.get_submodule(name.rsplit(".", 1)[0])

        def note(_m: nn.Module, _a: tuple, name: str = name) -> None:
            if name not in seen:
                seen.append(name)

        handles.append(module.register_forward_pre_hook(note))
    try:
        with evaluating(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [n.rsplit(".", 1)[0] for n in names if n not in seen]
    if missing:
        raise SweeplabError(
            f"layers {missing} never run in the model's forward pass, so no calibration "
            f"input reaches them; add them to pruning.exclude"
        )
    return seen


def layer_inputs(model: nn.Module, module: nn.Module, chunks: Sequence[Tensor]) -> Iterator[Tensor]:
    """For each chunk, the input of `module` in model(chunk) as it is now (its first call);
    the forward pass stops there."""
    captured: list[Tensor] = []

    def catch(_m: nn.Module, args: tuple) -> None:
        captured.append(args[0].detach())
        raise _Reached

    handle = module.register_forward_pre_hook(catch)
    try:
        for chunk in chunks:
            captured.clear()
            with evaluating(model), torch.no_grad(), suppress(_Reached):
                model(chunk)
            yield captured[0]
    finally:
        handle.remove()


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """model.eval() for the block (batch norm's running statistics, no dropout); every
    module's own mode is put back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)
