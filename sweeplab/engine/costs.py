"""Cost metrics that tell the truth: MACs, bytes a user would ship, measured CPU latency.

Units. MACs are multiply-accumulates of one example's forward pass, counted with
torch.utils.flop_counter.FlopCounterMode, which reports FLOPs = 2 x MACs for convolutions and
matrix products (and ignores batch norm, activations, pooling and additions); we halve it, the
convention of the pruning literature (Li et al. 2017's "FLOPs" are these MACs). Sizes are
payload bytes (tensor data, no container overhead). Latency is milliseconds per forward pass,
with its spread (sweeplab.engine.latency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from sweeplab.engine.latency import REPEATS, latency_fields
from sweeplab.engine.latency import latency_ms as latency_ms  # re-exported: costs.latency_ms
from sweeplab.engine.plain import example_input
from sweeplab.errors import SweeplabError
from sweeplab.pruning.masks import PRUNABLE_TYPES

FP32_BYTES = 4


def macs_by_layer(model: nn.Module, input_shape: Sequence[int]) -> dict[str, float]:
    """Dense MACs of one example per module name ("" holds the whole model).

    Args:
        model: any nn.Module taking a batch shaped (N, *input_shape).
        input_shape: shape of one example, e.g. (3, 32, 32).
    Returns:
        module name -> MACs of everything that module ran (its children included).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example_input(model, input_shape))
    finally:
        model.train(was_training)
    root = type(model).__name__
    out = {}
    # Keys are "<root class>.<module name>"; "Global" is everything.
    for key, ops in counter.get_flop_counts().items():
        if key == "Global":
            name = ""
        elif key == root:
            continue
        elif key.startswith(root + "."):
            name = key[len(root) + 1 :]
        else:
            continue
        out[name] = sum(ops.values()) / 2
    out.setdefault("", 0.0)
    return out


def macs(model: nn.Module, input_shape: Sequence[int], sparse: bool = False) -> float:
    """Multiply-accumulates of one example's forward pass.

    Args:
        model: any nn.Module; a physically pruned model simply counts fewer.
        input_shape: shape of one example.
        sparse: scale each Conv/Linear layer's MACs by the fraction of its weights that are
            nonzero (attached masks applied): the work a sparse kernel would do.
    Returns:
        MACs (float; FlopCounterMode's FLOPs / 2).
    """
    per_layer = macs_by_layer(model, input_shape)
    total = per_layer[""]
    if not sparse:
        return total
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES) and name in per_layer:
            weight = module.weight.detach()
            density = int(torch.count_nonzero(weight)) / weight.numel()
            total -= per_layer[name] * (1.0 - density)
    return total


def shippable(model: nn.Module) -> dict[str, Tensor]:
    """The tensors a user needs for inference: state_dict with masks folded into weights."""
    state = model.state_dict()
    out = {}
    for key, value in state.items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            base = key[: -len("_orig")]
            out[base] = value * state[f"{base}_mask"]
        else:
            out[key] = value
    return out


def size_dense_bytes(model: nn.Module) -> int:
    """Bytes of every inference tensor stored dense, floats as fp32."""
    return sum(_dense_bytes(t) for t in shippable(model).values())


def _dense_bytes(t: Tensor) -> int:
    return t.numel() * (FP32_BYTES if t.is_floating_point() else t.element_size())


@dataclass(frozen=True)
class Encoding:
    """How one tensor is stored: format and payload bytes."""

    format: str  # dense | bitmask | index
    nbytes: int


def index_bytes(n: int) -> int:
    """Bytes of the smallest unsigned integer that can address n positions."""
    return 1 if n <= 1 << 8 else 2 if n <= 1 << 16 else 4


def encode_choice(t: Tensor) -> Encoding:
    """The smallest of three encodings of a float tensor with n entries, k nonzero.

    dense: n fp32 values (4n bytes). bitmask: one bit per entry plus the k fp32 values
    (ceil(n/8) + 4k). index: the k positions as uint8/16/32 (smallest that fits n) plus the
    k values. Ties go to the simpler format, in that order. Integer tensors stay dense.
    """
    if not t.is_floating_point():
        return Encoding("dense", _dense_bytes(t))
    n, k = t.numel(), int(torch.count_nonzero(t))
    options = [
        Encoding("dense", FP32_BYTES * n),
        Encoding("bitmask", math.ceil(n / 8) + FP32_BYTES * k),
        Encoding("index", k * (index_bytes(n) + FP32_BYTES)),
    ]
    return min(options, key=lambda e: e.nbytes)  # min keeps the first of equals


def sparse_encodings(model: nn.Module) -> dict[str, Encoding]:
    """The chosen encoding of every inference tensor, keyed by state_dict name."""
    return {k: encode_choice(v) for k, v in shippable(model).items()}


def size_sparse_bytes(model: nn.Module) -> int:
    """Bytes of the sparse encoding a user would ship (engine.export writes exactly this)."""
    return sum(e.nbytes for e in sparse_encodings(model).values())


def nm_bytes(numel: int, n: int, m: int) -> int:
    """Bytes of one tensor in N:M's compressed form: the N values of every group of M (fp32,
    as every size here) plus ceil(log2(M)) bits of position metadata per value, packed.

    NVIDIA's 2:4 format stores the 2 kept values of each group of 4 and a 2-bit index for
    each (4 bits per group); general N:M needs ceil(log2(M)) bits per kept value. In fp16
    (what the sparse tensor cores run) the values would take half of the 4 bytes counted here.
    """
    kept = numel // m * n
    bits = max(1, math.ceil(math.log2(m)))
    return kept * FP32_BYTES + math.ceil(kept * bits / 8)


def size_nm_bytes(model: nn.Module, layers: Sequence[str], n: int, m: int) -> int:
    """Bytes a user would ship with `layers` (state_dict names) in N:M form, every other
    tensor in its smallest encoding (encode_choice): the N:M counterpart of size_sparse_bytes.
    """
    grouped = set(layers)
    return sum(
        nm_bytes(t.numel(), n, m) if name in grouped else encode_choice(t).nbytes
        for name, t in shippable(model).items()
    )


def speedup(before: float, after: float) -> float:
    """before / after: a theoretical speedup from MACs, a measured one from latencies."""
    if not (before > 0 and after > 0):
        raise SweeplabError(f"speedup needs positive costs, got {before} and {after}")
    return before / after


def cost_fields(
    dense: nn.Module,
    pruned: nn.Module,
    input_shape: Sequence[int],
    latency: bool = True,
    repeats: int = REPEATS,
    threads: int | None = None,
    dense_cache: dict[str, float | int] | None = None,
) -> dict[str, float | int]:
    """Every cost field of a ResultRow, dense vs pruned (masked or physically smaller).

    Args:
        dense: the dense model.
        pruned: the pruned model: with masks, zeros, or fewer channels.
        input_shape: shape of one example.
        latency: measure CPU latency (seconds of work); False leaves those fields out.
        repeats: timed samples per latency figure.
        threads: torch threads while timing (see latency.timings); None keeps the current.
        dense_cache: the dense model's MACs and size from an earlier call with the same dense
            model (filled on first use), so a run with several results counts them once. Its
            latency is timed again with every result, in turn with the pruned model's samples.
    Returns:
        ResultRow field name -> value (latency fields: latency.latency_fields).
    """
    cache = dense_cache if dense_cache is not None else {}
    if "flops_dense" not in cache:
        cache["flops_dense"] = macs(dense, input_shape)
        cache["size_dense_bytes"] = size_dense_bytes(dense)
    out: dict[str, float | int] = {
        "flops_dense": cache["flops_dense"],
        "flops": macs(pruned, input_shape, sparse=True),
        "size_dense_bytes": cache["size_dense_bytes"],
        "size_sparse_bytes": size_sparse_bytes(pruned),
    }
    # What the pruned model ships as: the smaller of its dense and sparse encodings (equal
    # to the dense size of a physically smaller model with no zeros).
    out["size_bytes"] = min(size_dense_bytes(pruned), int(out["size_sparse_bytes"]))
    out["speedup_theoretical"] = speedup(out["flops_dense"], out["flops"])
    if latency:
        out |= latency_fields(dense, pruned, input_shape, repeats, threads)
    return out
