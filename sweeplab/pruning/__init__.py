"""Pruning: one file per criterion (scores), masks.py turns scores into exact-count masks."""

from sweeplab.pruning.base import Pruner
from sweeplab.pruning.masks import apply_masks, prunable_parameters, remove_masks, threshold

__all__ = ["Pruner", "apply_masks", "prunable_parameters", "remove_masks", "threshold"]
