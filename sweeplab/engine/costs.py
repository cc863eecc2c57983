"""Cost metrics that tell the truth: MACs, bytes a user would ship, measured CPU latency.

Units. MACs are multiply-accumulates of one example's forward pass, counted with
torch.utils.flop_counter.FlopCounterMode, which reports FLOPs = 2 x MACs for convolutions and
matrix products (and ignores batch norm, activations, pooling and additions); we halve it, the
convention of the pruning literature (Li et al. 2017's "FLOPs" are these MACs). Sizes are
payload bytes (tensor data, no container overhead). Latency is milliseconds per forward pass.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from sweeplab.errors import SweeplabError
from sweeplab.pruning.masks import PRUNABLE_TYPES, remove_masks

FP32_BYTES = 4


def plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy with attached masks made permanent (zeros in place), the model untouched.

    copy.deepcopy alone fails on a masked model: torch's prune hooks keep `weight` as a
    non-leaf tensor, which deepcopy refuses; the memo hands it a detached clone instead.
    """
    memo: dict[int, object] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    out = copy.deepcopy(model, memo)
    remove_masks(out)
    return out


def _example(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> Tensor:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)


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
            model(_example(model, input_shape))
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


def latency_ms(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    repeats: int = 15,
    warmup: int = 3,
    min_sample_ms: float = 5.0,
    threads: int | None = None,
) -> float:
    """Median CPU wall time of one forward pass of a batch, under torch.inference_mode.

    The model is copied to the CPU in eval mode with masks made permanent (the zeros stay;
    dense kernels do not skip them, which is the point). Each sample times enough passes to
    last min_sample_ms, so timer resolution does not matter at batch 1. The figure depends
    on torch.get_num_threads() and on other load on the machine.

    Args:
        model: the model to time (left untouched).
        input_shape: shape of one example.
        batch_size: examples per forward pass.
        repeats: timed samples; the median is returned.
        warmup: untimed passes first (allocator, oneDNN kernel choice).
        min_sample_ms: shortest duration of one sample, in ms.
        threads: torch intra-op threads while timing (restored after); None keeps the
            current setting. On a machine shared with other jobs, 1 thread gives stable
            figures: several threads then mostly measure waiting for descheduled peers.
    Returns:
        Milliseconds per forward pass.
    """
    if repeats < 1 or batch_size < 1:
        raise SweeplabError(
            f"latency needs repeats >= 1 and batch_size >= 1, got {repeats}, {batch_size}"
        )
    cpu = plain_copy(model).cpu().eval()
    x = _example(cpu, input_shape, batch_size)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _median_ms(cpu, x, repeats, warmup, min_sample_ms)
    finally:
        torch.set_num_threads(previous)


def _median_ms(
    model: nn.Module, x: Tensor, repeats: int, warmup: int, min_sample_ms: float
) -> float:
    with torch.inference_mode():
        for _ in range(max(warmup, 1)):
            start = time.perf_counter()
            model(x)
        once = max(time.perf_counter() - start, 1e-6)
        inner = max(1, math.ceil(min_sample_ms / 1000 / once))
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                model(x)
            samples.append((time.perf_counter() - start) * 1000 / inner)
    return statistics.median(samples)


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
    repeats: int = 15,
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
        threads: torch threads while timing (see latency_ms); None keeps the current.
        dense_cache: the dense model's fields from an earlier call with the same dense model
            (filled on first use), so a run with several results measures the dense once.
    Returns:
        ResultRow field name -> value.
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
        for b in (1, 64):
            key = f"latency_b{b}_dense_ms"
            if key not in cache:
                cache[key] = latency_ms(dense, input_shape, b, repeats, threads=threads)
            out[key] = cache[key]
            out[f"latency_b{b}_ms"] = latency_ms(pruned, input_shape, b, repeats, threads=threads)
        out["speedup_measured"] = speedup(out["latency_b64_dense_ms"], out["latency_b64_ms"])
    return out
