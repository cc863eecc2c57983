"""SET and RigL mask updates during training: a Lightning callback on the optimizer steps.

After each planned optimizer step the callback updates every layer's mask in place
(sweeplab.pruning.dynamic.update_mask), sets the grown weights to zero and zeroes their
optimizer state (momentum; Adam's moments), as the reference's `reset_momentum` does.

RigL grows by the dense gradient dL/dw of the update step's minibatch. With
torch.nn.utils.prune, w = w_orig * mask and dL/dw_orig = dL/dw * mask is zero where the mask is,
so that gradient is read from the masked tensor `w` itself: before the forward pass of an
update step, a forward pre-hook (after prune's own) adds a tensor hook to the fresh `w`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from sweeplab.engine.train import StepCallback
from sweeplab.pruning.dynamic import DynamicSparse, drop_count, drop_scores, update_mask

if TYPE_CHECKING:
    from sweeplab.engine.train import LitClassifier


@dataclass
class Update:
    """One mask update: after optimizer step `step`, `moved[name]` weights of each layer moved
    (dropped, and as many inactive ones grown) at drop fraction `fraction`."""

    step: int
    fraction: float
    moved: dict[str, int]


def _owner(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name.rpartition(".")[0])


class MaskUpdates(StepCallback):
    """Updates the masks attached to `model` after the planned optimizer steps of one fit.

    Args:
        model: the model, masks attached (torch.nn.utils.prune) on every name of `masks`.
        masks: parameter name -> the attached mask buffers (updated in place).
        pruner: SET or RigL: drop fraction, grow scores.
        steps: optimizer steps (1-based) after which to update.
        total: optimizer steps of the fit (the drop fraction's schedule).
        generator: SET's random grow scores.
        on_update: called after each update (tests check invariants there).
    """

    def __init__(
        self,
        model: nn.Module,
        masks: Mapping[str, Tensor],
        pruner: DynamicSparse,
        steps: Sequence[int],
        total: int,
        generator: torch.Generator,
        on_update: Callable[[Update], None] | None = None,
    ) -> None:
        self.model, self.masks, self.pruner = model, dict(masks), pruner
        self.due, self.total, self.generator = set(steps), total, generator
        self.on_update = on_update
        self.history: list[Update] = []
        self.gradients: dict[str, Tensor] = {}
        self._armed = False
        self._hooks: list[Any] = []
        if pruner.needs_gradient:
            for name in self.masks:
                hook = _owner(model, name).register_forward_pre_hook(self._capture(name))
                self._hooks.append(hook)

    @property
    def changed(self) -> int:
        """Weights moved over all updates (each drop of an active weight grows an inactive one)."""
        return sum(sum(u.moved.values()) for u in self.history)

    def close(self) -> None:
        """Remove the gradient hooks (the recovery that follows trains without them)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def _arm(self, step: int) -> None:
        """Capture the dense gradient of optimizer step `step`'s minibatch if it updates."""
        self._armed = self.pruner.needs_gradient and step in self.due
        self.gradients.clear()

    def _capture(self, name: str) -> Callable[[nn.Module, Any], None]:
        def pre_forward(module: nn.Module, args: Any) -> None:
            weight = module.weight  # weight_orig * mask, just recomputed by prune's hook
            if not (self._armed and torch.is_grad_enabled() and weight.requires_grad):
                return

            def store(grad: Tensor) -> None:
                seen = self.gradients.get(name)
                self.gradients[name] = grad.detach().clone() if seen is None else seen + grad

            weight.register_hook(store)

        return pre_forward

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._arm(1)

    def on_optimizer_step(self, module: LitClassifier | None, step: int) -> None:
        if step in self.due:
            self.update(step, None if module is None else module.optimizers(use_pl_optimizer=False))
        self._arm(step + 1)

    @torch.no_grad()
    def update(self, step: int, optimizer: torch.optim.Optimizer | None) -> Update:
        """Drop and grow every layer's connections now; returns what moved."""
        fraction = self.pruner.fraction_at(step, self.total)
        moved = {}
        for name, mask in self.masks.items():
            weight = _owner(self.model, name).weight_orig
            grow = self.pruner.grow_scores(weight, self.gradients.get(name), self.generator)
            new = update_mask(mask, drop_scores(weight, mask), grow, drop_count(mask, fraction))
            grown = (new > 0) & (mask == 0)
            weight[grown] = 0.0
            state = {} if optimizer is None else optimizer.state.get(weight, {})
            for value in state.values():
                if torch.is_tensor(value) and value.shape == weight.shape:
                    value[grown] = 0
            mask.copy_(new)
            moved[name] = int(grown.sum())
        self.gradients.clear()
        done = Update(step, fraction, moved)
        self.history.append(done)
        if self.on_update is not None:
            self.on_update(done)
        return done
