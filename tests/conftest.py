"""Shared fixtures: tiny IDX datasets, composed configs, and the CLI in this process (`cli`) or
in a subprocess (`cli_subprocess`)."""

from __future__ import annotations

import gzip
import io
import os
import signal
import struct
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# Under pytest-xdist (`make test` runs `pytest -n auto`) every worker is one process on one core:
# torch gets one thread there, and the runs it starts inherit OMP_NUM_THREADS, so workers never
# oversubscribe the cores (2-thread runs beside each other slow ~8x on 2 cores: their OpenMP
# threads wait on descheduled peers).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
SHARED_MNIST = REPO.parent / "shared" / "datasets" / "mnist"
# Small enough that a whole sweep runs in seconds on 2 cores.
# measure.repeats=5: the fewest timed samples that give a spread (default 15); tests that check
# latency itself set their own.
FAST = ["train.epochs=2", "finetune.epochs=1", "measure.repeats=5"]


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (gzip when compress)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


@pytest.fixture
def tiny_idx(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a folder of MNIST-named IDX files with n_train/n_test random 28x28 images."""

    def make(n_train: int = 64, n_test: int = 32, compress: bool = True, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        root = tmp_path / f"idx_{n_train}_{n_test}_{compress}"
        root.mkdir(exist_ok=True)
        ext = ".gz" if compress else ""
        for split, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, size=(n, 28, 28))
            labels = rng.integers(0, 10, size=(n,))
            write_idx(root / f"{split}-images-idx3-ubyte{ext}", images, compress)
            write_idx(root / f"{split}-labels-idx1-ubyte{ext}", labels, compress)
        return root

    return make


def compose(overrides: list[str]):
    """Compose sweeplab's config with overrides (no Hydra run, no output dirs)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


@dataclass
class CliResult:
    """What a `sweeplab` command gave: the fields of subprocess.CompletedProcess tests read."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def sweeplab(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the `sweeplab` CLI of this interpreter in a subprocess, capturing its output.

    For what only a process shows: the console entry's exit code, signals, kill -9, import
    costs, launchers whose workers are processes, a fresh interpreter's state."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sweeplab", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _exit_code(e: SystemExit) -> int:
    """The process exit status `raise SystemExit(e.code)` would give (printing a text code)."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


@contextmanager
def _process_state_restored() -> Iterator[None]:
    """Put back what a sweeplab command changes in its process: env, cwd, argv, sys.path, signal
    handlers (engine.interrupts), the unraisable hook, logging (Hydra's dictConfig empties the
    root logger; libraries bind handlers to the captured streams), warning filters, Hydra's
    global state, torch's thread count (build_spec sets it) and the RNGs."""
    import logging
    import random

    environ, cwd, argv, path = dict(os.environ), os.getcwd(), list(sys.argv), list(sys.path)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    unraisable = sys.unraisablehook
    loggers = [logging.root, *(
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    )]  # fmt: skip
    logger_state = {lg: (list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers}
    logging_disabled = logging.root.manager.disable
    py_rng, np_rng = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = (torch.get_num_threads(), torch.get_rng_state()) if torch else None
    _clear_hydra()
    try:
        with warnings.catch_warnings():
            yield
    finally:
        _clear_hydra()
        os.chdir(cwd)
        sys.argv, sys.path[:] = argv, path
        os.environ.clear()
        os.environ.update(environ)
        for s, handler in handlers.items():
            if signal.getsignal(s) is not handler and handler is not None:
                signal.signal(s, handler)
        sys.unraisablehook = unraisable
        for lg in [logging.root, *logging.root.manager.loggerDict.values()]:
            if not isinstance(lg, logging.Logger):
                continue
            handlers_before, level, propagate, disabled = logger_state.get(
                lg, ([], lg.level, lg.propagate, lg.disabled)
            )
            for h in lg.handlers:  # Hydra's or a library's, bound to this command's streams
                if h not in handlers_before and isinstance(h, logging.FileHandler):
                    h.close()
            lg.handlers[:] = handlers_before
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
        logging.disable(logging_disabled)
        random.setstate(py_rng)
        np.random.set_state(np_rng)
        if torch_state is not None:
            torch.set_num_threads(torch_state[0])
            torch.set_rng_state(torch_state[1])


def _clear_hydra() -> None:
    """No Hydra app initialized, no job's HydraConfig (engine.task reads it when set)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # type: ignore[assignment]


def sweeplab_inprocess(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> CliResult:
    """`sweeplab ARGS` in this process: sweeplab.cli.main (what the console entry calls, minus
    its gc.freeze and exit), run in cwd with env set, its output captured, SystemExit turned into
    the exit code; the process state it changes is put back. timeout: unused (a signature
    shared with `sweeplab`)."""
    from sweeplab import cli

    if args[:1] in (["run"], ["reproduce"], ["export"]):
        import torch  # noqa: F401  (these commands import it anyway: its state is then restored)

    out, err = io.StringIO(), io.StringIO()
    with _process_state_restored():
        os.environ.update(env or {})
        os.chdir(cwd)
        warnings.simplefilter("ignore")  # PYTHONWARNINGS=ignore of the subprocess runner
        sys.argv = ["sweeplab", *args]
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as e:
                code = _exit_code(e)
            except BaseException:  # what the interpreter prints for an uncaught error
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    return CliResult(list(args), int(code), out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """`sweeplab ARGS` in this process: the default for refusals and end-to-end paths."""
    return sweeplab_inprocess


@pytest.fixture(scope="session")
def cli_subprocess() -> Callable[..., subprocess.CompletedProcess]:
    """`python -m sweeplab ARGS` in a fresh process: only for what a process alone shows."""
    return sweeplab


def rows_in(results: Path) -> list[Path]:
    return sorted((results / "runs").glob("*.json"))
