"""sweeplab: experiment sweeps for neural-network pruning research."""

__version__ = "0.1.0"
