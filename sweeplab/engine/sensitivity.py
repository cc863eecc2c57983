"""Sensitivity analysis: each layer of a trained dense model pruned alone at a list of rates.

The analysis is a schedule that engine.pipeline.run drives like any other, so the dense model
is trained, or loaded from the dense cache, exactly as for `sweeplab run`. Instead of pruning
and recovering, it prunes one unit at a time, at each rate, on a fresh copy of the dense model
(every other unit dense), without retraining, and hands each point to `write` at once (one row
each: engine.sensitivity_task). A unit is a prunable layer (a Linear/Conv weight) for an
unstructured criterion, a group of coupled channels (Torch-Pruning's, rooted at one layer:
sweeplab.pruning.structured.groups) for a channel or neuron criterion.

Accuracy is measured on the validation split (what pruning.distribution=sensitivity allocates
by) and on the test split. Every point draws its criterion's randomness and batches from the
run's streams afresh, so a point measured alone (re-running an interrupted analysis) equals the
one a whole analysis measures.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from torch import Tensor, nn

from sweeplab.engine import streams
from sweeplab.engine.context import Outcome, RunContext
from sweeplab.engine.measure import accuracy
from sweeplab.engine.recovery import Recovery
from sweeplab.engine.schedules import Schedule
from sweeplab.errors import SweeplabError
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target
from sweeplab.pruning.masks import apply_masks, prunable_parameters, remove_masks
from sweeplab.pruning.strategy import Strategy
from sweeplab.pruning.structured.channels import ChannelPruner
from sweeplab.pruning.structured.groups import channel_groups

if TYPE_CHECKING:
    from sweeplab.engine.pipeline import Run


@dataclass(frozen=True)
class Unit:
    """What one curve prunes: a layer's weights, or one group of coupled channels."""

    name: str  # the layer's module name, or the group's root layer
    index: int  # position in model order
    size: int  # weights of the layer, or channels of the group
    kind: str  # "weights" or "channels"
    members: tuple[str, ...] = ()  # a group's modules (those whose outputs lose a channel)


@dataclass
class Point:
    """One unit pruned alone at one rate, measured: what one row records."""

    unit: Unit
    rate: float
    values: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class AllFinished(Exception):  # noqa: N818 - a signal, not an error
    """Every point of the analysis has its row: no dense model to train, nothing to measure."""


def check_criterion(pruner: Strategy) -> None:
    """Refuse a strategy the analysis cannot prune one unit of at a rate; before any work."""
    why = None
    if pruner.trains_sparse:
        why = "trains sparse from initialization: there is no dense model to analyse"
    elif isinstance(pruner, Pruner):
        modes = [k for k in ("threshold", "quality") if getattr(pruner, k) is not None]
        if modes:
            why = f"sets its amount by pruning.{modes[0]}; the analysis prunes at its rates"
        elif pruner.pattern is not None:
            why = "prunes an N:M pattern (pruning.pattern); the analysis prunes at its rates"
    elif not isinstance(pruner, ChannelPruner):
        why = "removes neither weights nor channel groups one layer at a time"
    if why:
        raise SweeplabError(
            f"sweeplab sensitivity cannot analyse pruning={pruner.name}: it {why}; use a "
            "weight criterion (e.g. pruning=global_magnitude) or a channel one (l1_filter)"
        )


def units(pruner: Strategy, model: nn.Module, example: Tensor) -> list[Unit]:
    """The units of a model a criterion prunes, in model order (its exclude left out)."""
    if isinstance(pruner, ChannelPruner):
        excluded = pruner.exclude
        groups = [
            g for g in channel_groups(model, example, pruner.granularity)
            if not any(m == e or m.startswith(e + ".") for m in g.members for e in excluded)
        ]  # fmt: skip
        return [Unit(g.name, i, g.size, "channels", tuple(g.members)) for i, g in enumerate(groups)]
    params = prunable_parameters(model, cast(Pruner, pruner).exclude)
    return [
        Unit(name.rsplit(".", 1)[0], i, w.numel(), "weights")
        for i, (name, w) in enumerate(params.items())
    ]


def zeros_per_layer(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros in each prunable weight (masks baked in)."""
    return {n: float((w == 0).sum()) / w.numel() for n, w in prunable_parameters(model).items()}


class Analysis(Schedule):
    """The sensitivity analysis as the schedule of a run (see the module docstring).

    Args:
        pruner: the criterion, as the run's config instantiates it.
        rates: the rates to prune each unit at, in [0, 1).
        done: whether a (unit, rate) point already has its row.
        write: stores one measured point (its row).
    """

    name = "sensitivity"
    single_shot = True

    def __init__(
        self,
        pruner: Strategy,
        rates: Sequence[float],
        done: Callable[[Unit, float], bool],
        write: Callable[[Point], None],
    ) -> None:
        check_criterion(pruner)
        self.pruner, self.rates, self.done, self.write = pruner, list(rates), done, write
        self.units: list[Unit] = []
        self.pending: list[tuple[Unit, float]] = []
        self.seconds = 0.0  # wall seconds measuring the points (dense training not included)

    def check_run(self, ctx: RunContext, recovery: Recovery) -> None:
        """Find the units and the points still to measure, before dense training; raises
        AllFinished when there are none."""
        job = cast("Run", ctx)
        self.units = units(self.pruner, job.model, job.splits.train_x[:1])
        self.pending = [(u, r) for u in self.units for r in self.rates if not self.done(u, r)]
        if not self.pending:
            raise AllFinished(f"{len(self.units)} units x {len(self.rates)} rates")

    def run(self, ctx: RunContext, recovery: Recovery) -> Iterator[Outcome]:
        """Measure every pending point, writing each at once; yields no result to recover."""
        job = cast("Run", ctx)
        start = time.perf_counter()
        s = job.splits
        dense = job.dense_model()
        base = {
            "test": accuracy(dense, s.test_x, s.test_y),
            "val": accuracy(dense, s.val_x, s.val_y),
        }
        for unit in self.units:
            rates = [r for u, r in self.pending if u == unit]
            shown = []
            for rate in rates:
                point = self.measure(job, unit, rate, base)
                self.write(point)
                shown.append(f"{rate:g}: {100 * float(point.values['acc_drop']):.2f}")  # type: ignore[arg-type]
            if shown:
                print(f"  {unit.name}: val drop (points) at rate {', '.join(shown)}", flush=True)
        self.seconds = time.perf_counter() - start
        yield from ()

    def measure(self, job: Run, unit: Unit, rate: float, base: dict[str, float]) -> Point:
        """Prune `unit` alone at `rate` on a copy of the dense model; its accuracies."""
        start = time.perf_counter()
        model, values = self.prune(job, unit, rate)
        pruned = time.perf_counter()
        s = job.splits
        test, val = accuracy(model, s.test_x, s.test_y), accuracy(model, s.val_x, s.val_y)
        values.update(
            layer=unit.name, layer_index=unit.index, layer_size=unit.size, layer_unit=unit.kind,
            rate=rate, acc_val=val, acc_test=test, acc_dense_val=base["val"],
            acc_dense_test=base["test"], acc_drop=base["val"] - val,
            acc_drop_test=base["test"] - test, granularity=self.pruner.granularity,
            dense_source=job.dense_source,
        )  # fmt: skip
        seconds = {"prune": round(pruned - start, 3),
                   "evaluate": round(time.perf_counter() - pruned, 3)}  # fmt: skip
        return Point(unit, rate, values, seconds)

    def prune(self, job: Run, unit: Unit, rate: float) -> tuple[nn.Module, dict[str, object]]:
        """A copy of the dense model with `unit` alone pruned at `rate`; what it achieved."""
        model = job.dense_model()
        generator = streams.generator(job.seed, "scores")
        others = [u for u in self.units if u.name != unit.name]
        if isinstance(self.pruner, ChannelPruner):
            # One group at the rate, every other group excluded; a group keeps >= 1 channel.
            removed = min(round(rate * unit.size), unit.size - 1)
            p = copy.copy(self.pruner)
            p.scope, p.layer_ratio, p.ratio = "layer", {}, removed / unit.size
            p.exclude = [*self.pruner.exclude, *(m for u in others for m in u.members)]
            before = sum(t.numel() for t in model.parameters())
            model = p.prune(model, job.splits.train_x[:1], job.batches(), generator)
            after = sum(t.numel() for t in model.parameters())
            return model, {"rate_achieved": removed / unit.size, "params_removed": before - after}
        p = copy.copy(cast(Pruner, self.pruner))
        p.exclude = [*p.exclude, *(u.name for u in others)]
        p.distribution, p.layer_scale, p.curves = None, {}, None
        masks = p.masks(model, job.batches(), generator, target=Target.oneshot(rate))
        apply_masks(model, masks)
        remove_masks(model)
        layers = zeros_per_layer(model)
        weights = {n: w.numel() for n, w in prunable_parameters(model).items()}
        zeros = sum(layers[n] * weights[n] for n in layers)
        return model, {
            "rate_achieved": layers[f"{unit.name}.weight"],
            "layer_sparsity": layers,
            "sparsity_achieved": zeros / sum(weights.values()),
        }
