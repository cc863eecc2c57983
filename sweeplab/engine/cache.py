"""The dense-model cache: trained once per dense_id, locked across parallel workers.

A checkpoint is written to a temp file, fsynced and renamed into place, so a reader sees a
whole file or none; it carries a sha256 of its tensors, because torch.load reads a file whose
tensor bytes were damaged without complaint. It also records whose it is (`owner`: the dense
id, the sha256 of the dense config, the step of a snapshot), because a file copied over another
dense model's (another seed, another model of the same shape) loads without complaint too.
Anything that fails to load or to match is trained again, never used.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import Tensor, nn

from sweeplab.engine import stacking
from sweeplab.errors import SweeplabError
from sweeplab.results.store import atomic_write

# 2: adds the sha256 of the tensors. 3: trained with one random stream per consumer
# (engine/streams.py); earlier dense models shared init and batch-order seeds. 4: records its
# owner. Older checkpoints are retrained once.
FORMAT = 4


def checkpoint_path(cache_dir: str | Path, dense_id: str) -> Path:
    return Path(cache_dir) / "dense" / f"{dense_id}.pt"


def partial_path(cache_dir: str | Path, dense_id: str) -> Path:
    """The partial checkpoint of an unfinished dense training (engine/resume.py); not named
    *.pt, which are trained models."""
    return Path(cache_dir) / "dense" / f"{dense_id}.partial"


def owner(dense_id: str, config_sha256: str, step: int | None = None) -> dict[str, object]:
    """What a checkpoint records about itself, and what a reader expects to find.

    Args:
        dense_id: the dense model's id (its file name).
        config_sha256: sha256 of its dense config (identity.dense_digest).
        step: the optimizer step of a snapshot (engine/snapshots.py); None for the trained model.
    """
    return {"dense_id": dense_id, "config_sha256": config_sha256, "step": step}


def _describe(who: object, sha: bool) -> str:
    if not isinstance(who, dict):
        return "no recorded owner"
    config = f" of config sha256 {who.get('config_sha256')}" if sha else ""
    if "phase" in who:  # a partial checkpoint (engine/resume.py)
        fit = f" (fit {who.get('index')})" if who.get("index") else ""
        return f"partial {who.get('phase')} training of {who.get('id')}{fit}{config}"
    step = f" at step {who.get('step')}" if who.get("step") is not None else ""
    return f"dense model {who.get('dense_id')}{step}{config}"


def digest(state: Mapping[str, Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_state(
    path: Path,
    state: Mapping[str, Tensor],
    info: Mapping[str, Any] | None = None,
    *,
    owner: Mapping[str, object],
) -> None:
    """Write a state dict (plus a small info dict) atomically and durably, with its digest
    and its owner (`store.atomic_write`).

    Args:
        path: where the checkpoint goes; its folder must exist.
        state: tensors to save (e.g. model.state_dict()).
        info: numbers to keep alongside (e.g. dense accuracies).
        owner: whose weights these are (`owner()`); load_state refuses the file for another.
    """
    blob = {"format": FORMAT, "state_dict": dict(state), "info": dict(info or {})}
    blob["owner"] = dict(owner)
    blob["sha256"] = digest(blob["state_dict"])
    atomic_write(path, lambda f: torch.save(blob, f))


def load_state(
    path: Path, owner: Mapping[str, object], redo: str | None = None
) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """Read a checkpoint written by save_state; None (and a warning) if it is unusable.

    Args:
        path: the checkpoint.
        owner: whose weights the caller wants (`owner()`).
        redo: what the caller does instead, for the warning (default: training it again).
    Returns:
        (state dict on CPU, info), or None when the file is missing, truncated, corrupt, of
        another format, its tensors do not match their digest, or it is another model's.
    """
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"not a sweeplab checkpoint of format {FORMAT}")
        if digest(blob["state_dict"]) != blob.get("sha256"):
            raise ValueError("tensor bytes do not match their sha256")
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is retrained
        _warn(f"checkpoint {path} is unusable ({e}); {redo or 'training it again'}")
        return None
    found, wanted = blob.get("owner"), dict(owner)
    if found != wanted:
        # The digests are named only when the ids agree (a 12-hex collision or an edited id).
        ids = [k for k in wanted if k != "config_sha256"]
        sha = isinstance(found, dict) and all(found.get(k) == wanted[k] for k in ids)
        instead = redo or f"training {wanted.get('dense_id')} again"
        _warn(
            f"checkpoint {path} holds {_describe(found, sha)}, not {_describe(wanted, sha)} "
            f"(copied or renamed); {instead}"
        )
        return None
    return blob["state_dict"], dict(blob["info"])


def _warn(message: str) -> None:
    # A print, not logging: runs disable Hydra's log configuration (root level ERROR).
    print(f"sweeplab: warning: {message}", file=sys.stderr, flush=True)


def _remove_stale_temps(path: Path) -> None:
    """Temp files of a writer that was killed mid-write (only called under the path's lock)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def get_or_train(
    cache_dir: str | Path,
    dense_id: str,
    model: nn.Module,
    train: Callable[[nn.Module], dict[str, float]],
    *,
    config_sha256: str,
) -> tuple[dict[str, float], str]:
    """Fill `model` with the dense weights for dense_id, training them only if not cached.

    Args:
        cache_dir: folder of the cache.
        dense_id: identity of (data, model, train, seed).
        model: freshly initialized model; loaded or trained in place.
        config_sha256: sha256 of the dense config (identity.dense_digest), kept in the file.
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
    # half-written file. The OS releases it when its holder dies, even by kill -9.
    mine = owner(dense_id, config_sha256)
    with stacking.exclusive(str(path)), FileLock(str(path) + ".lock"):
        loaded = load_state(path, mine)
        if loaded is not None:
            state, info = loaded
            try:
                model.load_state_dict(state)
                return info, "cache"
            except RuntimeError as e:  # same id, other architecture: a stale cache entry
                _warn(f"checkpoint {path} does not fit the model ({e}); training it again")
        _remove_stale_temps(path)
        info = train(model)
        save_state(path, model.state_dict(), info, owner=mine)
        # Only now, with the trained model on disk, is the partial one of no further use.
        partial_path(cache_dir, dense_id).unlink(missing_ok=True)
        return info, "trained"
