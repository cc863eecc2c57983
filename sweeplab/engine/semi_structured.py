"""N:M results: the pattern's row fields, its encoded size, and 2:4 latency measured where
torch's semi-structured sparse kernels run (torch.sparse.to_sparse_semi_structured: a CUDA GPU
of compute capability 8.0 or newer, fp16, 2-D weights of the shapes its backend takes).

Everywhere else nm_latency_ms is None and nm_latency_note says why: the figure is a
measurement or nothing.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from sweeplab.engine import costs
from sweeplab.pruning.nm import NMMasks

BATCH = 64  # examples per timed forward pass on the GPU
WARMUP = 10  # untimed passes per model first (kernel selection, caches)
INNER = 20  # passes per timed sample: one pass of a small model is shorter than a launch


def nm_fields(
    model: nn.Module,
    masks: Mapping[str, Tensor],
    input_shape: Sequence[int],
    *,
    latency: bool = True,
    repeats: int = 15,
) -> dict[str, object]:
    """Row fields of a result whose masks follow an N:M pattern ({} for any other masks).

    Args:
        model: the pruned model with its zeros in place (engine.plain.plain_copy).
        masks: the result's masks; NMMasks carry the pattern and the layers left dense.
        input_shape: shape of one example.
        latency: time the 2:4 kernels where they run (measure.latency).
        repeats: timed samples per latency figure.
    Returns:
        nm_pattern, nm_excluded (module names left dense), size_nm_bytes (costs.nm_bytes for
        the pattern's layers, the smallest encoding for every other tensor), nm_latency_ms and
        nm_latency_dense_ms (fp16 on the GPU, or None), nm_latency_note.
    """
    if not isinstance(masks, NMMasks):
        return {}
    pattern = masks.pattern
    layers = masks.grouped_layers() if pattern.n < pattern.m else []
    out: dict[str, object] = dict(masks.fields())
    out["size_nm_bytes"] = costs.size_nm_bytes(model, layers, pattern.n, pattern.m)
    reason = unavailable(str(pattern), enabled=latency, **environment())
    if reason is not None:
        return {**out, "nm_latency_ms": None, "nm_latency_dense_ms": None,
                "nm_latency_note": reason}  # fmt: skip
    return {**out, **measure_2_4(model, layers, input_shape, repeats)}


def environment() -> dict[str, object]:
    """What decides whether 2:4 kernels can run in this process."""
    cuda = torch.cuda.is_available()
    return {
        "has_api": hasattr(torch.sparse, "to_sparse_semi_structured"),
        "cuda": cuda,
        "capability": torch.cuda.get_device_capability() if cuda else None,
    }


def unavailable(
    pattern: str,
    *,
    enabled: bool,
    has_api: bool,
    cuda: bool,
    capability: tuple[int, int] | None,
) -> str | None:
    """Why 2:4 latency cannot be measured here, or None when it can.

    Args:
        pattern: the result's pattern, e.g. "2:4".
        enabled: measure.latency.
        has_api: torch has torch.sparse.to_sparse_semi_structured.
        cuda: a CUDA device is visible.
        capability: its compute capability (major, minor).
    """
    if not enabled:
        return "not timed: measure.latency=false"
    if pattern != "2:4":
        return f"no kernel: torch's semi-structured sparse kernels run 2:4 only, not {pattern}"
    if not has_api:
        return f"no kernel: torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured"
    if not cuda or capability is None:
        return (
            "no CUDA GPU: torch.sparse.to_sparse_semi_structured runs only on NVIDIA GPUs of "
            "compute capability 8.0 or newer"
        )
    if tuple(capability) < (8, 0):
        return (
            f"GPU compute capability {capability[0]}.{capability[1]}: 2:4 sparse tensor cores "
            "need 8.0 or newer"
        )
    return None


def measure_2_4(
    model: nn.Module,
    layers: Sequence[str],
    input_shape: Sequence[int],
    repeats: int,
    device: str = "cuda",
) -> dict[str, object]:
    """fp16 GPU latency of the model with its 2:4 Linear layers as semi-structured tensors,
    and of the same model dense, sampled in turn; medians in ms per batch of BATCH.

    Conv layers stay dense (torch has no semi-structured convolution), as does any Linear
    layer the backend refuses (shape, dtype, device); the note names them. With none left
    there is no figure.
    """
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    dense = copy.deepcopy(model).to(device=device, dtype=torch.float16).eval()
    sparse = copy.deepcopy(dense)
    previous = SparseSemiStructuredTensor._FORCE_CUTLASS
    if not torch.backends.cusparselt.is_available():
        SparseSemiStructuredTensor._FORCE_CUTLASS = True  # the other backend torch ships
    backend = "cutlass" if SparseSemiStructuredTensor._FORCE_CUTLASS else "cusparselt"
    converted, kept_dense = [], []
    try:
        for name in layers:
            module_name = name.rsplit(".", 1)[0]
            module = sparse.get_submodule(module_name)
            if not isinstance(module, nn.Linear):
                kept_dense.append(f"{module_name} (conv)")
                continue
            try:
                packed = to_sparse_semi_structured(module.weight.detach().contiguous())
            except RuntimeError as e:  # a shape or dtype this backend does not take
                kept_dense.append(f"{module_name} ({str(e).splitlines()[0][:80]})")
                continue
            module.weight = nn.Parameter(packed, requires_grad=False)
            converted.append(module_name)
        if not converted:
            return {"nm_latency_ms": None, "nm_latency_dense_ms": None,
                    "nm_latency_note": f"no 2:4 Linear layer torch's {backend} kernels take; "
                    f"dense: {kept_dense}"}  # fmt: skip
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((BATCH, *input_shape), generator=generator)
        x = x.to(device=device, dtype=torch.float16)
        dense_ms, sparse_ms = _gpu_medians([dense, sparse], x, repeats)
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = previous
    note = (
        f"fp16, batch {BATCH}, {torch.cuda.get_device_name()}, median of {repeats}; "
        f"2:4 {backend} kernels in {converted}"
    )
    if kept_dense:
        note += f"; dense: {kept_dense}"
    return {"nm_latency_ms": sparse_ms, "nm_latency_dense_ms": dense_ms, "nm_latency_note": note}


@torch.no_grad()
def _gpu_medians(models: Sequence[nn.Module], x: Tensor, repeats: int) -> list[float]:
    """Median ms per forward pass of each model, timed with CUDA events, models in turn."""
    for model in models:
        for _ in range(WARMUP):
            model(x)
    samples: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for i, model in enumerate(models):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(INNER):
                model(x)
            end.record()
            torch.cuda.synchronize()
            samples[i].append(start.elapsed_time(end) / INNER)
    return [statistics.median(s) for s in samples]
