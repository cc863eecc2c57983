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
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    dense_source: str | None = None  # trained | cache
    config: dict[str, Any] = field(default_factory=dict)  # resolved config
    git_sha: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return asdict(self)
