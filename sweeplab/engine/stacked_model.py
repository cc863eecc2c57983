"""K models of one architecture as one: stacked parameters, one vmapped forward.

`StackedModel` holds every parameter and buffer of K models as one tensor with a leading
variant dimension (`torch.func.stack_module_state`) and runs them with `vmap` over
`functional_call` on a template copy, so each layer is one batched kernel (a Linear becomes
one bmm). Masks attached with torch.nn.utils.prune are buffers like any other: each variant
keeps its own mask, its own batch-norm running statistics and its own optimizer state (SGD
and Adam act elementwise, so one optimizer over the stacked tensors updates each variant as its
own optimizer would). `write_back` copies the trained values into the K models.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.modules.dropout import _DropoutNd


def signature(model: nn.Module) -> tuple:
    """What two models must share to be stacked: class, parameter and buffer names, shapes,
    dtypes, devices, and which parameters train."""
    params = tuple(
        (n, tuple(p.shape), p.dtype, p.device.type, p.requires_grad)
        for n, p in model.named_parameters()
    )
    buffers = tuple((n, tuple(b.shape), b.dtype) for n, b in model.named_buffers())
    return (type(model).__module__, type(model).__qualname__, params, buffers)


def stochastic(model: nn.Module) -> bool:
    """Whether the model draws random numbers in its forward (dropout): a stacked forward
    would draw them differently from separate runs."""
    return any(isinstance(m, _DropoutNd) and m.p > 0 for m in model.modules())


def detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy; a masked module's computed `weight` (weight_orig * mask, not a leaf) is
    detached first, as deepcopy refuses non-leaf tensors."""
    saved = {}
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            name = getattr(hook, "_tensor_name", None)
            if name is not None and isinstance(getattr(module, name, None), Tensor):
                saved[(module, name)] = getattr(module, name)
                setattr(module, name, getattr(module, name).detach())
    try:
        return copy.deepcopy(model)
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


class StackedModel(nn.Module):
    """K models of one signature trained as one; forward maps [K, B, ...] to [K, B, classes].

    Args:
        models: the variants, already on their device; they are not modified until write_back.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.k = len(models)
        # Held outside the module tree: only the stacked tensors are this module's parameters.
        self.__dict__["template"] = detached_copy(models[0]).train(models[0].training)
        params, buffers = stack_module_state(list(models))
        self._names = list(params)
        self._buffer_names = list(buffers)
        for i, name in enumerate(self._names):
            self.register_parameter(f"p{i}", nn.Parameter(params[name].detach().clone()))
            self._parameters[f"p{i}"].requires_grad_(params[name].requires_grad)
        for i, name in enumerate(self._buffer_names):
            self.register_buffer(f"b{i}", buffers[name].detach().clone())
        self._vmapped = {}

    def stacked(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """{name: stacked parameter}, {name: stacked buffer}, by the models' own names."""
        params = {n: self._parameters[f"p{i}"] for i, n in enumerate(self._names)}
        buffers = {n: self._buffers[f"b{i}"] for i, n in enumerate(self._buffer_names)}
        return params, buffers  # type: ignore[return-value]

    def train(self, mode: bool = True) -> StackedModel:
        """Train or eval mode, the template's too (it runs every forward)."""
        super().train(mode)
        self.template.train(mode)
        return self

    def _call(self, params: dict, buffers: dict, x: Tensor) -> Tensor:
        return functional_call(self.template, (params, buffers), (x,))

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        """Logits [K, B, C] of inputs [K, B, ...] (shared=True: one [B, ...] batch for all)."""
        fn = self._vmapped.get(shared)
        if fn is None:
            fn = self._vmapped[shared] = vmap(self._call, in_dims=(0, 0, None if shared else 0))
        params, buffers = self.stacked()
        return fn(params, buffers, x)

    @torch.no_grad()
    def write_back(self, models: Sequence[nn.Module], keep: Sequence[bool] | None = None) -> None:
        """Copy variant k's trained parameters and buffers into models[k] (where keep[k])."""
        params, buffers = self.stacked()
        for k, model in enumerate(models):
            if keep is not None and not keep[k]:
                continue
            own = dict(model.named_parameters())
            for name, value in params.items():
                own[name].copy_(value[k])
            own_buffers = dict(model.named_buffers())
            for name, value in buffers.items():
                own_buffers[name].copy_(value[k])
