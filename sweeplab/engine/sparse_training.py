"""The run of a strategy that trains sparse from initialization (static, SET, RigL).

No dense model is trained or loaded: a random mask (its own stream, "sparse") goes on the
fresh initialization, the model trains with the `train` recipe while MaskUpdates changes the
mask (SET, RigL), the configured recovery follows with the mask frozen (finetune.epochs=0:
none), and one result is recorded. The row's acc_pruned_* is the accuracy at the end of sparse
training, before the recovery; acc_dense_* are None (there is no dense model); the dense
architecture at initialization is what costs and compression are counted against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from sweeplab.engine import streams
from sweeplab.engine.context import Outcome
from sweeplab.engine.mask_updates import MaskUpdates
from sweeplab.engine.recovery import Distill, Recovery
from sweeplab.engine.schedules import Schedule
from sweeplab.engine.snapshots import state_of
from sweeplab.errors import SweeplabError
from sweeplab.pruning.dynamic import DynamicSparse, SparseFromScratch
from sweeplab.pruning.masks import apply_masks, remove_masks
from sweeplab.pruning.strategy import Strategy

if TYPE_CHECKING:
    from sweeplab.engine.pipeline import Run

PHASE = "train"  # metric prefix and seconds key of the sparse training; its recipe is train.*


def check_combination(pruner: Strategy, schedule: Schedule, recovery: Recovery) -> None:
    """Refuse a schedule or recovery that cannot follow training sparse from initialization.

    Raises:
        SweeplabError naming the keys to change.
    """
    if not schedule.single_shot:
        raise SweeplabError(
            f"pruning={pruner.name} trains sparse from initialization on its own mask "
            f"schedule; schedule={schedule.name} cannot run with it: use schedule=oneshot"
        )
    if recovery.restarts_training or recovery.resets_dense_weights or isinstance(recovery, Distill):
        raise SweeplabError(
            f"pruning={pruner.name} has no dense model to rewind to or distill from; "
            f"recovery={recovery.name} cannot follow it: use recovery=finetune (finetune.epochs=0 "
            "for none) or lr_rewind"
        )


def train_sparse(job: Run, data_seconds: float) -> Run:
    """Run a sparse-from-scratch strategy on `job` (Run of sweeplab.engine.pipeline).

    Returns:
        The finished Run: one result in .results, masks baked into .model.
    """
    spec, splits = job.spec, job.splits
    pruner = cast(SparseFromScratch, spec.pruner)
    check_combination(pruner, spec.schedule, spec.recovery)
    with torch.no_grad():
        pruner.check(job.model, splits.train_x[:2])
    total = spec.train.epochs * job.steps_per_epoch(spec.train.batch_size)
    steps = pruner.update_steps(total)  # refuses a plan without any update
    spec.recovery.check_run(job)
    job.dense_state = state_of(job.model)  # the dense architecture, for costs only
    job.dense_source = "none"
    job.seconds = {"data": round(data_seconds, 3)}

    with job.timed("prune"):
        initial = pruner.masks(job.model, [], streams.generator(spec.seed, "sparse", 0))
        apply_masks(job.model, initial)
    # The attached buffers themselves: updates change them in place, the row measures them.
    masks = {name: job.model.get_submodule(name.rpartition(".")[0]).weight_mask for name in initial}
    updates = None
    if isinstance(pruner, DynamicSparse):
        grow = streams.generator(spec.seed, "sparse", 1)
        updates = MaskUpdates(job.model, masks, pruner, steps, total, grow)
    try:
        # The run's own training: batch order stream 0, as dense training would have.
        job.fit(spec.train, PHASE, index=0, callbacks=[updates] if updates else [])
    finally:
        if updates is not None:
            updates.close()
    before = job.evaluate()
    extra = {
        **spec.recovery.recover(job, masks),
        "mask_updates": 0 if updates is None else len(updates.history),
        "mask_changed": 0 if updates is None else updates.changed,
    }
    job.record(Outcome(masks, before, extra, requested=pruner.sparsity))
    remove_masks(job.model)
    return job
