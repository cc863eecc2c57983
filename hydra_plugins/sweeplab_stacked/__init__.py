"""hydra/launcher=stacked: a batch's runs in one process, their fits trained together."""

from hydra_plugins.sweeplab_stacked.launcher import StackedLauncher

__all__ = ["StackedLauncher"]
