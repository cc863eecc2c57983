"""Post-training pruning one layer at a time (Wanda, SparseGPT): calibrate, prune, go on.

Layers are pruned in forward order; each one's calibration inputs are computed through the
earlier layers as already pruned (sweeplab.pruning.calibration). A subclass prunes one layer
from its weight and its inputs; this base plans the counts, runs the pass and puts the model
back as the criterion declares (`updates_weights`: the new weights stay; otherwise every
weight is restored and only masks come out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.pruning import calibration as calib
from sweeplab.pruning import nm
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target
from sweeplab.pruning.masks import current_mask, prunable_parameters

Batches = Iterable[tuple[Tensor, Tensor]]


class LayerwisePruner(Pruner):
    """Base of criteria that calibrate and prune layer by layer (no threshold modes).

    Args:
        sparsity: fraction of prunable weights to prune (each layer at it, scope layer).
        calibration: examples read from the start of the run's shuffled training batches
            (all of them if the training split is smaller).
        **kwargs: Pruner's options (scope, name, exclude, pattern, distribution, ...).
    """

    scopes: ClassVar[tuple[str, ...]] = ("layer",)

    def __init__(self, sparsity: float | None = None, *, calibration: int = 128, **kwargs) -> None:
        name = kwargs.get("name") or type(self).__name__.lower()
        for mode in ("threshold", "quality"):
            if kwargs.get(mode) is not None:
                raise SweeplabError(
                    f"pruning={name} prunes counts, not by pruning.{mode}; remove "
                    f"pruning.{mode} and set pruning.sparsity, e.g. pruning.sparsity=0.5"
                )
        super().__init__(sparsity, **kwargs)
        self.calibration = calib.check_calibration(calibration)

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        super().check(model, example_input)
        names = list(prunable_parameters(model, self.exclude))
        calib.check_layers(model, names, self.name)

    def prune_layer(
        self,
        name: str,
        module: nn.Module,
        weight: Tensor,
        inputs: Iterator[Tensor],
        target: Target,
        plan: dict[str, float],
        existing: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """One layer's mask and its new weight (pruned entries zero).

        Args:
            name: parameter name ("fc1.weight").
            module: the layer.
            weight: its weight as the layer computes it (weight_orig times any attached mask).
            inputs: the layer's input per calibration chunk, through the earlier pruned layers.
            target: the step's target.
            plan: parameter name -> that layer's sparsity after this step (`plan`; empty
                under a pattern, whose count per group comes from the target).
            existing: this layer's earlier mask (its zeros stay pruned), or None.
        Returns:
            (mask, new weight), both shaped like weight.
        """
        raise NotImplementedError

    def plan(
        self, params: dict[str, Tensor], target: Target, existing: dict[str, Tensor] | None
    ) -> dict[str, float]:
        """Each layer's sparsity after this step, exact counts over n: the Pruner's scope
        layer (layer_scale, earlier masks) or distribution counts; empty under a pattern."""
        if self.pattern is not None:
            return {}
        dummy = {n: torch.zeros(w.shape) for n, w in params.items()}
        planned = Pruner.select(self, dummy, target, existing)
        return {n: float((m == 0).sum()) / m.numel() for n, m in planned.items()}

    def masks(
        self,
        model: nn.Module,
        batches: Batches,
        generator: torch.Generator,
        *,
        target: Target | None = None,
        existing: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        params = prunable_parameters(model, self.exclude)
        calib.check_layers(model, list(params), self.name)
        step = self.target(target)
        chunks = calib.examples(batches, self.calibration)
        order = calib.forward_order(model, list(params), chunks[0])
        plan = self.plan(params, step, existing)
        saved = {n: w.detach().clone() for n, w in params.items()}
        masks: dict[str, Tensor] = {}
        done = False
        try:
            with torch.no_grad():
                for name in order:
                    module = model.get_submodule(name.rsplit(".", 1)[0])
                    mask = current_mask(model, name)
                    weight = params[name].detach().clone()
                    weight = weight if mask is None else weight * mask
                    inputs = calib.layer_inputs(model, module, chunks)
                    earlier = None if existing is None else existing.get(name)
                    new_mask, new_weight = self.prune_layer(
                        name, module, weight, inputs, step, plan, earlier
                    )
                    masks[name] = new_mask.float()  # as budget.py's masks
                    params[name].copy_(new_weight)  # later layers see this layer pruned
            done = True
        finally:
            if not (done and self.updates_weights):
                with torch.no_grad():
                    for n, w in params.items():
                        w.copy_(saved[n])
        ordered = {n: masks[n] for n in params}
        if self.pattern is None:
            return ordered
        keep_n = nm.kept_per_group(self.pattern, step.sparsity)
        excluded = [n for n, w in params.items() if not nm.eligible(w.shape, self.pattern.m)]
        return nm.NMMasks(ordered, nm.Pattern(keep_n, self.pattern.m), excluded)
