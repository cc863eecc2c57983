"""Run identity, atomic row files, and reading rows back (pandas only, never torch)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from sweeplab.errors import SweeplabError
from sweeplab.row import SCHEMA_VERSION, ResultRow

# `sweeplab reproduce` sets it; run.py appends each job's run id to the file it names.
MANIFEST_ENV = "SWEEPLAB_MANIFEST"
# Config sections that determine a run's result. Paths, loggers, launchers and hardware flags
# (trainer) are left out, so moving results or switching loggers keeps every id.
RUN_KEYS = ("data", "model", "train", "pruning", "schedule", "recovery", "finetune", "seed")
DENSE_KEYS = ("data", "model", "train", "seed")
# Keys inside those sections that are locations, not content.
IGNORED_KEYS = frozenset({"root", "download"})


def _canonical(value: Any) -> Any:
    """Drop null values (a new option defaulting to null keeps old ids) and location keys."""
    if isinstance(value, Mapping):
        return {
            str(k): _canonical(v)
            for k, v in sorted(value.items())
            if v is not None and str(k) not in IGNORED_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def content_id(config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """Short sha256 of the canonical JSON of config[keys].

    Args:
        config: the resolved config as plain containers.
        keys: top-level sections that determine the result.
    Returns:
        12 hex characters.
    """
    subset = _canonical({k: config.get(k) for k in keys})
    blob = json.dumps(subset, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_id(config: Mapping[str, Any]) -> str:
    """Identity of a whole run: data, model, train, pruning, recovery and seed."""
    return content_id(config, RUN_KEYS)


def dense_id(config: Mapping[str, Any]) -> str:
    """Identity of the dense model a run starts from: data, model, train and seed."""
    return content_id(config, DENSE_KEYS)


def runs_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def row_path(results_dir: str | Path, rid: str) -> Path:
    return runs_dir(results_dir) / f"{rid}.json"


def _writer() -> str:
    """Who writes a temp file: host and pid, so a sweep can tell its dead workers' leftovers."""
    return f"{socket.gethostname()}-{os.getpid()}"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write path through a temp file, fsync and a rename: readers see all of it or nothing.

    The temp file, `.<name>.<host>-<pid>.<random>.tmp` beside path, names its writer, so that
    `remove_orphan_temps` can delete what a writer killed mid-write left behind.

    Args:
        path: the file to write; its folder is created.
        write: writes the content to the open binary file it is given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_orphan_temps(directory: Path) -> int:
    """Delete the `atomic_write` temp files under directory (at any depth: rows, dense
    checkpoints) whose writer, a process on this host, has ended (a worker killed mid-write,
    e.g. by joblib after Ctrl-C); return how many temp files of this host's writers are still
    alive. Other hosts' files are never touched: their writers may be running (a shared
    results dir on a cluster)."""
    import psutil

    pattern = re.compile(rf"\..+\.{re.escape(socket.gethostname())}-(\d+)\.[^.]+\.tmp")
    alive = 0
    for tmp in directory.rglob(".*.tmp"):
        match = pattern.fullmatch(tmp.name)
        if match is None:
            continue
        try:
            running = psutil.Process(int(match[1])).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            running = False
        if running:
            alive += 1
        else:
            tmp.unlink(missing_ok=True)
    return alive


def check_writable(results_dir: str | Path) -> None:
    """Raise SweeplabError unless rows can be written under results_dir (creating it).

    Called before Hydra starts, which otherwise fails with a traceback creating its output
    folder there, and before any training, which would be lost.
    """
    directory = runs_dir(results_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe.", suffix=".tmp"):
            pass
    except OSError as e:
        raise SweeplabError(
            f"paths.results_dir={results_dir} cannot be written ({e.strerror}); "
            "choose a writable directory with paths.results_dir=DIR"
        ) from e


def write_row(results_dir: str | Path, row: ResultRow) -> Path:
    """Write one run's row atomically; returns its path."""
    path = row_path(results_dir, row.run_id)
    try:
        atomic_write_text(path, json.dumps(row.to_dict(), indent=1, sort_keys=True, default=str))
    except OSError as e:
        raise SweeplabError(
            f"paths.results_dir={results_dir} cannot be written ({e.strerror}); "
            "choose a writable directory with paths.results_dir=DIR"
        ) from e
    return path


class TornRowError(SweeplabError):
    """A row file that is not whole JSON: copied in part or edited by hand (never written so)."""


def read_row(path: Path) -> dict[str, Any]:
    """Read one row file; refuse torn files and rows written by a newer schema."""
    try:
        row = json.loads(path.read_text())
        problem = None if isinstance(row, dict) else f"a JSON {type(row).__name__}"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problem = str(e)
    if problem is not None:
        raise TornRowError(
            f"{path} is not a whole JSON row ({problem}); delete it and run the sweep again, "
            "which redoes that run"
        )
    version = row.get("schema_version", 0)
    if version > SCHEMA_VERSION:
        raise SweeplabError(
            f"{path} has schema_version={version}, newer than this sweeplab ({SCHEMA_VERSION}); "
            "upgrade sweeplab to read it"
        )
    return row


def finished(results_dir: str | Path, rid: str) -> bool:
    """True when the run has an ok row (a failed run is retried)."""
    path = row_path(results_dir, rid)
    if not path.exists():
        return False
    try:
        return read_row(path).get("status") == "ok"
    except (TornRowError, OSError):
        return False  # run it again; the new row replaces the torn one


def iter_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    """All rows under results_dir/runs, sorted by file name."""
    directory = runs_dir(results_dir)
    if not directory.is_dir():
        raise SweeplabError(
            f"{results_dir} has no runs/ folder; run a sweep first "
            "(sweeplab run -m ...) or pass the results dir it wrote to"
        )
    return [read_row(p) for p in sorted(directory.glob("*.json"))]


def collect(results_dir: str | Path):  # -> pandas.DataFrame
    """Rows of a results dir as a DataFrame, one row per run (config and dicts kept as objects)."""
    import pandas as pd

    return pd.DataFrame(iter_rows(results_dir))


# Objectives a search (conf/hparams_search) may name besides the row's numeric columns.
DERIVED_OBJECTIVES = ("sparsity_within_drop",)


def _numeric_columns() -> list[str]:
    from dataclasses import fields

    numeric = (f for f in fields(ResultRow) if str(f.type).split(" |")[0] in ("float", "int"))
    return [f.name for f in numeric if f.name not in ("seed", "round", "schema_version")]


def check_objectives(names: Iterable[str]) -> list[str]:
    """Return the objective names as a list, or raise SweeplabError naming an unknown one.

    Args:
        names: `search.objectives`: numeric row columns or derived objectives.
    Returns:
        The names, in order.
    """
    known = [*_numeric_columns(), *DERIVED_OBJECTIVES]
    names = [str(n) for n in names]
    for name in names:
        if name not in known:
            raise SweeplabError(
                f"search.objectives names {name!r}, which is not a numeric row column; "
                f"choose from: {', '.join(known)}"
            )
    return names


def objective_values(row: Mapping[str, Any], names: Iterable[str], max_drop: float) -> list[float]:
    """The values of one finished row that a search optimizes (Optuna's objective values).

    `sparsity_within_drop` is the achieved sparsity when the recovered model is at most
    max_drop below dense on the validation split, else minus that drop: any run within the
    budget beats any run outside it, and closer misses rank higher.

    Args:
        row: an ok row.
        names: objective names (see check_objectives).
        max_drop: allowed validation-accuracy drop as a fraction (0.01 = 1 point).
    Returns:
        One float per name.
    """
    values = []
    for name in check_objectives(names):
        if name == "sparsity_within_drop":
            drop = float(row["acc_dense_val"]) - float(row["acc_finetuned_val"])
            value = row["sparsity_achieved"] if drop <= max_drop else -drop
        else:
            value = row.get(name)
        if value is None:
            raise SweeplabError(
                f"run {row.get('run_id')} has no value for objective {name!r}; "
                "choose a column its schedule and recovery fill in"
            )
        values.append(float(value))
    return values


def objectives(
    results_dir: str | Path, rid: str, names: Iterable[str], max_drop: float
) -> list[float]:
    """Objective values of a finished run, read back from its row (also for skipped runs)."""
    return objective_values(read_row(row_path(results_dir, rid)), names, max_drop)
