"""Structured pruning: remove whole channels, neurons or residual blocks, physically.

groups.py finds coupled channels (Torch-Pruning's dependency graph) and removes them,
criteria.py scores channel groups, blocks.py removes whole residual blocks.
"""

from sweeplab.pruning.structured.blocks import BlockRemoval
from sweeplab.pruning.structured.criteria import (
    BNScale,
    ChannelPruner,
    L1Filter,
    L2Filter,
    RandomFilter,
    StructuredPruner,
    TaylorFilter,
)

__all__ = [
    "BNScale",
    "BlockRemoval",
    "ChannelPruner",
    "L1Filter",
    "L2Filter",
    "RandomFilter",
    "StructuredPruner",
    "TaylorFilter",
]
