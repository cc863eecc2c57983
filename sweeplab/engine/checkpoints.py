"""Test accuracy at the last checkpoints of a recovery fit (some papers report the best)."""

from __future__ import annotations

import torch

from sweeplab.data.base import Splits
from sweeplab.engine.measure import accuracy
from sweeplab.engine.train import LitClassifier, StepCallback

# The fits that train the pruned model itself (not dense training, replays or LTH's control).
RECOVERY_PHASES = ("finetune", "retrain")


class TestCheckpoints(StepCallback):
    """Test accuracy at the fit's last `count` checkpoints, `every` optimizer steps apart.

    Checkpoints are counted back from the fit's end (the last one is the final model), as the
    SNIP reference code keeps its last 10 checkpoints, 1000 iterations apart. Evaluation reads
    no random numbers and leaves train mode as it was: training is unchanged.
    """

    __test__ = False  # not a pytest class, despite its name

    def __init__(self, splits: Splits, count: int, every: int) -> None:
        self.splits, self.count, self.every = splits, count, every
        self.accs: list[float] = []

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        left = module.total_steps - step
        if left % self.every == 0 and left < self.count * self.every:
            with torch.no_grad():
                acc = accuracy(module.model, self.splits.test_x, self.splits.test_y)
            self.accs.append(acc)
