"""Which fits of a stacked launch train together, and training them (engine/stacking.py).

`fitter()` is what a run's fits call: train.fit, or inside a stacked launch a function with
the same arguments that queues the fit for a group and returns the row fields it adds:
`engine: stacked`, `stack_size` (variants trained together) and, for a fit that trained by
itself, `stack_alone` (why). A fit trains alone when a stacked fit would not reproduce it:
callbacks of its own (gradual pruning, SET/RigL, checkpoint accuracies, snapshot replays),
dropout, weight or batch-norm penalties, gradient clipping, accumulation or another precision.
Stacked fits write no partial checkpoints: a killed stacked group is trained again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sweeplab.engine import stacking
from sweeplab.engine.resume import Resume
from sweeplab.engine.stacked_model import signature, stochastic
from sweeplab.engine.train import fit as single_fit

BUDGET_FRACTION = 0.25  # of the memory available when a group forms, for one stacked fit


def fitter() -> Callable[..., dict[str, object] | None]:
    """train.fit outside a stacked launch; the stacked launch's queueing fit inside one."""
    return single_fit if stacking.current() is None else fit


def why_alone(model: nn.Module, cfg: Any, kw: dict[str, Any]) -> str | None:
    """Why this fit cannot train in a stacked group (None: it can)."""
    if any(not isinstance(c, Resume) for c in kw.get("callbacks", ())):
        return "it has callbacks of its own"
    if stochastic(model):
        return "its model has dropout"
    if cfg.weight_l1 or cfg.weight_l2 or cfg.bn_l1:
        return "its recipe adds a weight or batch-norm penalty"
    s = kw.get("settings")
    if s is not None and (
        s.gradient_clip_val is not None
        or s.accumulate_grad_batches != 1
        or str(s.precision) not in ("32-true", "32")
        or s.detect_anomaly
    ):
        return "its trainer settings clip, accumulate or change precision"
    return None


def _key(model: nn.Module, splits: Any, cfg: Any, kw: dict[str, Any]) -> tuple:
    """Fits with equal keys train together: recipe, data, architecture, schedule window."""
    distill = kw.get("distill")
    teacher = None
    if distill is not None:
        teacher = (signature(distill.teacher), distill.alpha, distill.temperature)
    return (
        kw["phase"], repr(cfg), kw.get("steps"), kw.get("lr_window"), kw.get("inner_steps"),
        repr(kw.get("settings")), kw.get("accelerator", "cpu"), kw.get("devices", 1),
        signature(model), id(splits.train_x), bool(splits.augment), teacher,
    )  # fmt: skip


def fit(model: nn.Module, splits: Any, cfg: Any, **kw: Any) -> dict[str, object]:
    """train.fit's arguments; trains with the group, or alone; returns the row fields
    (`share`: the seconds of the group's fit charged to this run)."""
    coordinator = stacking.current()
    assert coordinator is not None
    reason = why_alone(model, cfg, kw)
    if reason is None and (cfg.epochs == 0 or kw.get("steps") == 0):
        return {}
    if reason is None:
        kwargs = {**kw, "model": model, "splits": splits, "cfg": cfg, "callbacks": ()}
        request = stacking.FitRequest(kwargs, _key(model, splits, cfg, kw))
        info = coordinator.fit(request)
        if request.alone is None:
            return info
        reason = request.alone
    single_fit(model, splits, cfg, **kw)
    return {"engine": "stacked", "stack_size": 1, "stack_alone": f"{kw['phase']}: {reason}"}


def charge(run: Any, phase: str, info: dict[str, object]) -> None:
    """Book a stacked launch's fit on its run (pipeline.Run): the phase's seconds get the
    run's share of its group's fit; the result's row fields get the group size of its last
    fit (the recovery's, where it has one) and every fit that trained alone (`phase: why`)."""
    share = float(info.pop("share", 0.0))  # type: ignore[arg-type]
    run.seconds[phase] = round(run.seconds[phase] + share, 3)
    run.shares += share
    measured = run.measured
    measured["engine"] = info.get("engine", "stacked")
    measured["stack_size"] = info.get("stack_size")
    reasons = [r for r in (measured.get("stack_alone"), info.get("stack_alone")) if r]
    measured["stack_alone"] = "; ".join(str(r) for r in reasons) or None


def train_group(requests: list[stacking.FitRequest]) -> None:
    """The coordinator's: train these requests (equal keys) together, or send them back."""
    if len(requests) == 1:
        requests[0].alone = "no other fit of the batch shares its recipe, data and model"
        return
    from sweeplab.engine.stacked_fit import fit_stacked

    start = time.perf_counter()
    try:
        errors = fit_stacked([r.kwargs for r in requests])
    except Exception as e:  # the variants are untouched until the end: train each alone
        for r in requests:
            r.alone = f"the stacked fit failed ({type(e).__name__}: {e})"
        return
    seconds = round(time.perf_counter() - start, 3)
    for r, error in zip(requests, errors, strict=True):
        r.error = error
        # "share": the run's share of the group's fit time, its phase's seconds in the row.
        r.info = {"engine": "stacked", "stack_size": len(requests), "stack_alone": None,
                  "share": seconds / len(requests)}  # fmt: skip


def variant_bytes(request: stacking.FitRequest) -> int:
    """Memory one more variant takes in a stacked fit: weights, gradients and two optimizer
    states (4 copies of parameters and buffers), plus the activations of one minibatch,
    measured by one forward of a single example (twice: kept for the backward pass)."""
    kw = request.kwargs
    model, splits = kw["model"], kw["splits"]
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    outputs = [0]

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and not list(module.children()):
            outputs[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(splits.train_x[:1])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return 4 * weights + 2 * outputs[0] * kw["cfg"].batch_size


def group_limit(most: int, budget_bytes: int | None) -> Callable[[list[Any]], int]:
    """The coordinator's group size: at most `most` variants, and no more than fit in
    `budget_bytes` (None: a quarter of the memory available when the group forms)."""

    def limit(requests: list[stacking.FitRequest]) -> int:
        budget = budget_bytes
        if budget is None:
            import psutil

            budget = int(psutil.virtual_memory().available * BUDGET_FRACTION)
        return max(1, min(most, budget // max(variant_bytes(requests[0]), 1)))

    return limit
