"""The result row: a fixed core (identity, labels, status, config, provenance) plus open metrics.

On disk a row is JSON with the core at top level and every measured value under `metrics`, so
a new metric is one line where it is computed. As a mapping (ResultRow.to_dict, store.read_row,
the columns of rows.load_rows) a row is flat: core fields and metrics side by side, for rows of
every schema version alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sweeplab.errors import SweeplabError

# Bump when the file layout changes or a core field changes meaning; readers refuse rows newer
# than this. 1: metrics at top level beside the core; 2: metrics under "metrics".
SCHEMA_VERSION = 2


@dataclass
class ResultRow:
    """What one run is (identity, labels, config, provenance) and what it measured (metrics).

    Missing metrics read as None (`row.flops` of a run that measured no FLOPs): the metric set
    is open, and "not measured" is what a missing one means.
    """

    # identity
    run_id: str
    dense_id: str
    # labels: what the run is, for grouping and filtering
    experiment: str
    data: str
    model: str
    strategy: str
    scope: str
    schedule: str
    recovery: str
    seed: int
    sparsity_requested: float | None
    round: int | None = None  # iterative schedules: one row per round, this is its number
    status: str = "ok"  # ok | failed
    error: str | None = None
    # every measured value: accuracies (fractions), parameter counts, costs, layer_sparsity...
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config
    # provenance. threads: torch intra-op threads the run trained with; float sums reduce in a
    # thread-dependent order, so one run id at two thread counts can differ (LTH: 0.29 points)
    git_sha: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    threads: int | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        clash = sorted(set(self.metrics) & set(CORE))
        if clash:
            raise SweeplabError(
                f"metric {clash[0]!r} has the name of a row core field; rename the metric"
            )

    def __getattr__(self, name: str) -> Any:
        # Only called when no field matched: a metric, or None when the run did not measure it.
        if name.startswith("_") or "metrics" not in self.__dict__:
            raise AttributeError(name)
        return self.metrics.get(name)

    def to_record(self) -> dict[str, Any]:
        """The row as its file holds it: the core, metrics nested (JSON-ready)."""
        return asdict(self)

    def to_dict(self) -> dict[str, Any]:
        """The row as readers see it: core fields and metrics side by side (see flatten)."""
        return flatten(self.to_record())


CORE = tuple(f.name for f in fields(ResultRow) if f.name != "metrics")


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """A row file's content as one flat mapping: core fields and metrics side by side.

    Args:
        record: a parsed row file of any schema version (1 kept metrics at top level).
    Returns:
        A new dict; a core field wins over a metric of the same name (never written so).
    """
    flat = {k: v for k, v in record.items() if k != "metrics"}
    metrics = record.get("metrics")
    if isinstance(metrics, Mapping):
        flat = {**metrics, **flat}
    return flat


# Deepest nesting a row holds (its config sections and metric mappings take a few levels);
# anything deeper is not a row, and would exhaust the recursion of readers that walk it.
MAX_DEPTH = 32
_MAPPINGS = ("config", "metrics", "seconds", "versions")


def problem(record: Any) -> str | None:
    """Why a parsed row file is not a row (None when it is one), in a few words.

    Args:
        record: what json.loads gave for the file.
    """
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if not isinstance(record.get("run_id"), str):
        return f"run_id={record.get('run_id')!r} is not a text id"
    version = record.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        return f"schema_version={version!r} is not a whole number >= 0"
    for key in _MAPPINGS:
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key} is a JSON {type(record[key]).__name__}, not an object"
    stack: list[tuple[Any, int]] = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return None
