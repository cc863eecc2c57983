"""Pruning: one file per criterion (scores); budget.py turns scores and a target into masks."""

from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target, select
from sweeplab.pruning.masks import apply_masks, prunable_parameters, remove_masks
from sweeplab.pruning.strategy import ModelPruner, Strategy

__all__ = [
    "ModelPruner",
    "Pruner",
    "Strategy",
    "Target",
    "apply_masks",
    "prunable_parameters",
    "remove_masks",
    "select",
]
