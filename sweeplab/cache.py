"""The dense-model cache: trained once per dense_id, locked across parallel workers."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn

from sweeplab.errors import SweeplabError

log = logging.getLogger(__name__)
FORMAT = 1


def checkpoint_path(cache_dir: str | Path, dense_id: str) -> Path:
    return Path(cache_dir) / "dense" / f"{dense_id}.pt"


def _save(path: Path, model: nn.Module, info: dict[str, float]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, "state_dict": model.state_dict(), "info": info}, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _load(path: Path, model: nn.Module) -> dict[str, float] | None:
    """Load a checkpoint into model; None (and a warning) if it is corrupt or does not fit."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != FORMAT:
            raise ValueError(f"format {blob.get('format')}")
        model.load_state_dict(blob["state_dict"])
        return dict(blob["info"])
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is retrained
        log.warning("dense checkpoint %s is unreadable (%s); training it again", path, e)
        return None


def get_or_train(
    cache_dir: str | Path,
    dense_id: str,
    model: nn.Module,
    train: Callable[[nn.Module], dict[str, float]],
) -> tuple[dict[str, float], str]:
    """Fill `model` with the dense weights for dense_id, training them only if not cached.

    Args:
        cache_dir: folder of the cache.
        dense_id: identity of (data, model, train, seed).
        model: freshly initialized model; loaded or trained in place.
        train: trains the model in place and returns its dense metrics.
    Returns:
        (dense metrics, "cache" or "trained").
    """
    path = checkpoint_path(cache_dir, dense_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweeplabError(
            f"paths.cache_dir={cache_dir} cannot be created ({e.strerror}); "
            "set paths.cache_dir to a writable folder"
        ) from e
    # One lock per dense model: parallel workers wait rather than train it twice or read a
    # half-written file.
    with FileLock(str(path) + ".lock"):
        if path.exists():
            info = _load(path, model)
            if info is not None:
                return info, "cache"
        info = train(model)
        _save(path, model, info)
        return info, "trained"
