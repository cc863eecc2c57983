"""Shared fixtures: tiny IDX datasets, composed configs, and the CLI in a subprocess."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
SHARED_MNIST = REPO.parent / "shared" / "datasets" / "mnist"
# Small enough that a whole sweep runs in seconds on 2 cores.
FAST = ["train.epochs=2", "finetune.epochs=1"]


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


def sweeplab(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the `sweeplab` CLI of this interpreter in a subprocess, capturing its output."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sweeplab", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rows_in(results: Path) -> list[Path]:
    return sorted((results / "runs").glob("*.json"))
