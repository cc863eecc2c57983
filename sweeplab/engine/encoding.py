"""One tensor in the smallest of the encodings a row's size counts (costs.encode_choice), and back.

encode writes a dict of tensors and plain values (dense, bitmask or index); decode reads it
with torch and math only: its source is copied into the loader an export ships
(sweeplab.engine.export), so a user's process needs no sweeplab to read the weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sweeplab.engine.costs import encode_choice, index_bytes


def encode(t: Tensor) -> dict[str, object]:
    """A tensor in the smallest of the encodings (see costs.encode_choice), ready for torch.save."""
    choice = encode_choice(t)
    if choice.format == "dense":
        return {"format": "dense", "tensor": t.float() if t.is_floating_point() else t}
    flat = t.detach().flatten()
    keep = flat != 0
    entry: dict[str, object] = {
        "format": choice.format,
        "shape": list(t.shape),
        "values": flat[keep].float(),
    }
    if choice.format == "bitmask":
        bits = torch.cat([keep, keep.new_zeros((-len(keep)) % 8)]).view(-1, 8).to(torch.uint8)
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8)
        entry["bits"] = (bits << shifts).sum(1).to(torch.uint8)
    else:
        dtype = {1: torch.uint8, 2: torch.uint16, 4: torch.int32}[index_bytes(t.numel())]
        entry["index"] = keep.nonzero().flatten().to(dtype)
    return entry


def decode(entry: dict) -> torch.Tensor:
    """One tensor from its stored form: dense, bitmask (bits + values) or index (+ values)."""
    if entry["format"] == "dense":
        return entry["tensor"]
    shape = entry["shape"]
    flat = torch.zeros(math.prod(shape), dtype=entry["values"].dtype)
    if entry["format"] == "bitmask":
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8)
        keep = ((entry["bits"].unsqueeze(1) >> shifts) & 1).flatten()[: flat.numel()].bool()
        flat[keep] = entry["values"]
    elif entry["format"] == "index":
        flat[entry["index"].to(torch.int64)] = entry["values"]
    else:
        raise ValueError(f"unknown tensor format {entry['format']!r}")
    return flat.view(shape)
