"""The weights a row measured, saved beside it: <results_dir>/models/<row id>.pt.

Each result row (every round of an iterative schedule too) keeps its model's weights, so
`sweeplab export` loads them instead of re-running prune and recovery. The file holds every
inference tensor (masks folded in) in the encoding the row's size counts (engine.encoding:
sparse where that is smaller), whether structured pruning made the model smaller (its shapes
are the tensors' shapes), and the row id. The row records the file's sha256, and a reader
checks it before the file is unpickled at all (then torch.load with weights_only: tensors and
plain containers only, no code).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from sweeplab.engine.costs import shippable
from sweeplab.engine.encoding import decode, encode
from sweeplab.errors import SweeplabError
from sweeplab.results.store import atomic_write

# The file's layout; a reader refuses another.
FORMAT = 1
DIGEST_KEY = "weights_sha256"  # the row's metric that records the file's sha256


def weights_path(results_dir: str | Path, row_id: str) -> Path:
    return Path(results_dir) / "models" / f"{row_id}.pt"


@dataclass
class Weights:
    """A result's model as it is saved: encoded tensors (on the CPU) and its kind."""

    tensors: dict[str, dict[str, object]]
    structured: bool  # a smaller dense model (structured pruning), not masks

    @classmethod
    def of(cls, model: nn.Module, structured: bool) -> Weights:
        """The model's inference tensors now (copies: later training leaves them as they are)."""
        state = shippable(model)
        return cls({k: encode(v.detach().cpu().clone()) for k, v in state.items()}, structured)


def save(results_dir: str | Path, row_id: str, weights: Weights) -> str:
    """Write the row's weights file atomically (the user's umask, like rows); its sha256.

    Args:
        results_dir: the results dir the row goes to.
        row_id: the row's run id (`<run_id>-r<k>` for an earlier round).
        weights: what Weights.of took from the model.
    Returns:
        The sha256 (hex) of the file's bytes, for the row.
    """
    blob = {
        "format": FORMAT,
        "run_id": row_id,
        "structured": weights.structured,
        "tensors": weights.tensors,
    }
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    data = buffer.getvalue()
    path = weights_path(results_dir, row_id)
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as e:
        raise SweeplabError(
            f"paths.results_dir={results_dir} cannot be written ({e.strerror}: {path}); "
            "choose a writable directory with paths.results_dir=DIR"
        ) from e
    return hashlib.sha256(data).hexdigest()


def load(results_dir: str | Path, row_id: str, sha256: str) -> tuple[dict[str, Tensor], bool]:
    """The row's weights (tensors on the CPU) and whether its model is structurally smaller.

    Args:
        results_dir: the results dir holding the row.
        row_id: the row's run id.
        sha256: what the row records (DIGEST_KEY).
    Raises:
        SweeplabError (one line) when the file is missing, is not the row's (its sha256
        differs) or is not a weights file.
    """
    path = weights_path(results_dir, row_id)
    rebuild = f"export it with --rebuild (re-runs prune and recovery) or run {row_id} again"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SweeplabError(f"{path} cannot be read ({e.strerror}); {rebuild}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise SweeplabError(
            f"{path} has sha256 {found[:12]}, its row records {str(sha256)[:12]}: these are not "
            f"the row's weights (copied over or damaged); {rebuild}"
        )
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("run_id") != row_id:
        raise SweeplabError(f"{path} is not a weights file of format {FORMAT}; {rebuild}")
    return {k: decode(v) for k, v in blob["tensors"].items()}, bool(blob["structured"])
