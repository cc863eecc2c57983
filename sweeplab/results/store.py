"""Row files: atomic writes, temp-file reaping, reading and writing one row (never torch).

Many rows are read as one DataFrame by sweeplab.results.rows.load_rows.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sweeplab.errors import SweeplabError, warn
from sweeplab.results.row import SCHEMA_VERSION, ResultRow, flatten, problem

# `sweeplab reproduce` sets it; engine/task.py appends each job's run id to the file it names.
MANIFEST_ENV = "SWEEPLAB_MANIFEST"


def runs_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def row_path(results_dir: str | Path, rid: str) -> Path:
    return runs_dir(results_dir) / f"{rid}.json"


def _writer() -> str:
    """Who writes a temp file: host and pid, so a sweep can tell its dead workers' leftovers."""
    return f"{socket.gethostname()}-{os.getpid()}"


def open_temp(path: Path) -> tuple[int, Path]:
    """A new, empty temp file beside path, opened for writing (a file descriptor), named after
    its writer (`remove_orphan_temps` deletes it once that process has ended).

    Created as open() creates files (mode 0666 less the umask, and the folder's default ACL),
    not mkstemp's 0600: on a shared results dir collaborators read the rows and checkpoints.
    """
    while True:
        tmp = path.parent / f".{path.name}.{_writer()}.{secrets.token_hex(4)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue  # 32 random bits taken: draw again


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write path through a temp file, fsync and a rename: readers see all of it or nothing.

    The temp file, `.<name>.<host>-<pid>.<random>.tmp` beside path, names its writer, so that
    `remove_orphan_temps` can delete what a writer killed mid-write left behind. The file gets
    the permissions any file the user creates gets (the umask).

    Args:
        path: the file to write; its folder is created.
        write: writes the content to the open binary file it is given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_orphan_temps(directory: Path) -> int:
    """Delete the `atomic_write` temp files under directory (at any depth: rows, dense
    checkpoints, claims) whose writer, a process on this host, has ended (a worker killed
    mid-write, by kill -9 or by joblib after Ctrl-C); return how many temp files of this host's
    writers are still alive. Other hosts' files are never touched: their writers may be running
    (a shared results dir on a cluster). Hydra's output folders hold no temp files and are not
    walked."""
    import psutil

    pattern = re.compile(rf"\..+\.{re.escape(socket.gethostname())}-(\d+)\.[^.]+\.tmp")
    alive = 0
    for folder, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d != "hydra"]
        for name in files:
            match = pattern.fullmatch(name)
            if match is None:
                continue
            try:
                running = psutil.Process(int(match[1])).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                running = False
            if running:
                alive += 1
            else:
                (Path(folder) / name).unlink(missing_ok=True)
    return alive


_SWEPT: set[Path] = set()


def remove_orphan_temps_once(*directories: str | Path) -> None:
    """`remove_orphan_temps` of each directory, once per process (its first run there): a sweep
    started after a kill -9 removes the temp files the killed writers left, not only a sweep
    that aborts. Live writers' files (a concurrent sweep) stay."""
    folders = sorted({Path(d).resolve() for d in directories})
    for folder in folders:
        inside = any(folder != o and folder.is_relative_to(o) for o in folders)
        if folder not in _SWEPT and not inside and folder.is_dir():
            remove_orphan_temps(folder)
        _SWEPT.add(folder)


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
    """Write one run's row atomically (the file form: metrics nested); returns its path."""
    path = row_path(results_dir, row.run_id)
    text = json.dumps(row.to_record(), indent=1, sort_keys=True, default=str)
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise SweeplabError(
            f"paths.results_dir={results_dir} cannot be written ({e.strerror}); "
            "choose a writable directory with paths.results_dir=DIR"
        ) from e
    return path


class TornRowError(SweeplabError):
    """A file in runs/ that is not a row: torn JSON (copied in part), JSON that is not a row
    object, a folder; never written so by sweeplab."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            f"{path} is not a valid row ({problem}); delete it and run the sweep again, which "
            "redoes that run"
        )


def read_row(path: Path) -> dict[str, Any]:
    """Read one row file, flat (core fields and metrics side by side, any schema version).

    Refuses files that are no row (TornRowError) and rows written by a newer schema.
    """
    try:
        row = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TornRowError(path, f"not whole JSON: {e}") from None
    except RecursionError:
        raise TornRowError(path, "nested too deeply to read") from None
    except IsADirectoryError:
        raise TornRowError(path, "a directory") from None
    wrong = problem(row)
    if wrong is not None:
        raise TornRowError(path, wrong)
    version = row.get("schema_version", 0)
    if version > SCHEMA_VERSION:
        raise SweeplabError(
            f"{path} has schema_version={version}, newer than this sweeplab ({SCHEMA_VERSION}); "
            "upgrade sweeplab to read it"
        )
    return flatten(row)


_NAMED: set[Path] = set()  # row files finished() has warned about in this process


def finished(results_dir: str | Path, rid: str) -> bool:
    """True when the run has an ok row (a failed run is retried; a file that is no row is
    named, and the run redone, its new row replacing the file)."""
    path = row_path(results_dir, rid)
    if path.is_dir():
        raise SweeplabError(
            f"{path} is a directory where this run's row belongs; move or delete it, then run again"
        )
    if not path.exists():
        return False
    try:
        return read_row(path).get("status") == "ok"
    except TornRowError as e:
        if path not in _NAMED:  # once, though a claimed run asks again
            _NAMED.add(path)
            warn(f"{path} is not a valid row ({e.problem}); running the run again to replace it")
        return False
    except OSError:
        return False  # run it again; the new row replaces it
