"""sweeplab's default Hydra sweeper (Hydra finds sweepers only in the hydra_plugins namespace)."""

from hydra_plugins.sweeplab_sweeper.sweeper import SweeplabSweeper

__all__ = ["SweeplabSweeper"]
