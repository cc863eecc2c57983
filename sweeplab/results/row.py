"""The result row: one per run, long format; every aggregate is derived from rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when a field changes meaning or is removed; readers refuse rows newer than this.
SCHEMA_VERSION = 1


@dataclass
class ResultRow:
    """Everything one run measured, plus what it needs to be reproduced."""

    run_id: str
    dense_id: str
    experiment: str
    status: str  # ok | failed
    data: str
    model: str
    strategy: str
    scope: str
    schedule: str
    recovery: str
    seed: int
    sparsity_requested: float
    error: str | None = None
    sparsity_achieved: float | None = None  # over prunable weights
    params_total: int | None = None  # every parameter, biases and norms included
    params_prunable: int | None = None  # weights of Linear/Conv layers
    params_nonzero: int | None = None  # every parameter that is not exactly zero
    compression: float | None = None  # params_total / params_nonzero (ShrinkBench)
    acc_dense_test: float | None = None
    acc_dense_val: float | None = None
    acc_pruned_test: float | None = None  # right after pruning, before recovery
    acc_pruned_val: float | None = None
    acc_finetuned_test: float | None = None
    acc_finetuned_val: float | None = None
    # weight_rewind with control: the same mask on a random re-initialization (LTH's control)
    acc_reinit_test: float | None = None
    acc_reinit_val: float | None = None
    # measure.checkpoints > 0: test accuracy at the last checkpoints of recovery training,
    # oldest first (the last is acc_finetuned_test's model)
    acc_checkpoints_test: list[float] | None = None
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    round: int | None = None  # iterative schedules: one row per round, this is its number
    granularity: str | None = None  # weight (unstructured) | channel | neuron | block
    shared_bits: int | None = None  # weight sharing: index bits per surviving weight
    # Cost metrics (issue 4). FLOPs are multiply-accumulates of one example's forward pass:
    # sparsity-aware for masks, real for removed structure. Sizes in bytes; latency in ms,
    # median of repeats under torch.inference_mode on CPU.
    flops_dense: float | None = None
    flops: float | None = None
    size_dense_bytes: int | None = None  # fp32 dense
    size_sparse_bytes: int | None = None  # the sparse encoding a user would ship
    size_bytes: int | None = None  # what the pruned model ships as (smallest honest encoding)
    latency_b1_dense_ms: float | None = None
    latency_b1_ms: float | None = None
    latency_b64_dense_ms: float | None = None
    latency_b64_ms: float | None = None
    speedup_theoretical: float | None = None  # flops_dense / flops
    speedup_measured: float | None = None  # latency_b64_dense_ms / latency_b64_ms
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    dense_source: str | None = None  # trained | cache
    # torch intra-op threads the run trained with: float sums reduce in a thread-dependent
    # order, so the same run id at another thread count can differ (LTH: 0.29 points)
    threads: int | None = None
    config: dict[str, Any] = field(default_factory=dict)  # resolved config
    git_sha: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return asdict(self)
