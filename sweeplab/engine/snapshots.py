"""Weights at step k of dense training, cached next to the dense checkpoint or replayed.

Weight rewinding (Frankle et al. 2020) needs the dense model as it was after k optimizer
steps. A missing snapshot is recomputed by replaying the first k steps of the same
deterministic dense training, under a file lock so that parallel runs replay it once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from filelock import FileLock
from torch import Tensor, nn

from sweeplab.engine import stacking
from sweeplab.engine.cache import checkpoint_path, load_state, owner, save_state
from sweeplab.engine.train import LitClassifier, StepCallback


def state_of(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of model's state_dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Capture(StepCallback):
    """Copies the model's weights at one optimizer step, then stops training."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.state: dict[str, Tensor] = {}

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        if step == self.step:
            self.state = state_of(module.model)
            module.trainer.should_stop = True


def snapshot(
    cache_dir: Path,
    dense_id: str,
    step: int,
    replay: Callable[[Capture], None],
    device: torch.device,
    *,
    config_sha256: str,
) -> Mapping[str, Tensor]:
    """Weights at optimizer step `step` (> 0) of the dense training `dense_id`.

    Args:
        cache_dir: the cache folder of dense checkpoints.
        dense_id: the dense model's id.
        step: optimizer step, >= 1.
        replay: runs the dense training from its initialization with the callback given.
        device: where the returned tensors live.
        config_sha256: sha256 of the dense config (identity.dense_digest), kept in the file.
    Returns:
        The state_dict at that step.
    """
    path = checkpoint_path(cache_dir, dense_id).with_suffix(f".step{step}.pt")
    mine = owner(dense_id, config_sha256, step)
    with stacking.exclusive(str(path)), FileLock(str(path) + ".lock"):
        cached = load_state(path, mine)  # None if missing, damaged or another model's
        if cached is not None:
            return {k: v.to(device) for k, v in cached[0].items()}
        capture = Capture(step)
        replay(capture)
        save_state(path, capture.state, owner=mine)
        return capture.state
