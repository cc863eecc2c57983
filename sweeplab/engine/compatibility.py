"""Which pruning strategy, schedule and recovery combine, decided from their declarations.

task.py calls check_combination after instantiating the three, before any data is loaded or
any model trained.
"""

from __future__ import annotations

from sweeplab.engine.recovery import Recovery
from sweeplab.engine.schedules import Schedule, refusal
from sweeplab.errors import SweeplabError
from sweeplab.pruning.strategy import Strategy


def check_combination(pruner: Strategy, schedule: Schedule, recovery: Recovery) -> None:
    """Refuse, from their declarations, a strategy, schedule and recovery that cannot combine.

    Args:
        pruner: declares what it produces (masks or a smaller model).
        schedule: declares single_shot, needs_target and prunes_during_recovery.
        recovery: declares resets_dense_weights, needs_masks and restarts_training.
    Raises:
        SweeplabError naming the keys to change.
    """
    if pruner.produces == "model":
        # Structures are removed physically: later rounds, masks over time, or weights reset
        # to the dense model's shapes have nothing to act on.
        if not schedule.single_shot:
            raise SweeplabError(
                f"pruning={pruner.name} removes {pruner.granularity}s physically and runs with "
                f"schedule=oneshot only, not schedule={schedule.name}"
            )
        if recovery.resets_dense_weights:
            raise SweeplabError(
                f"recovery={recovery.name} resets weights of the dense architecture; with "
                f"pruning={pruner.name} use recovery=finetune, lr_rewind or distill"
            )
        if recovery.needs_masks:
            raise SweeplabError(
                f"recovery={recovery.name} acts on the weights a mask keeps; with "
                f"pruning={pruner.name} use recovery=finetune, lr_rewind or distill"
            )
    schedule.check(pruner.sparsity)
    if schedule.needs_target and pruner.sparsity is None:
        raise SweeplabError(f"schedule={schedule.name} needs pruning.sparsity (not threshold mode)")
    if schedule.prunes_during_recovery and recovery.restarts_training:
        raise SweeplabError(refusal(schedule.name, recovery.name))
