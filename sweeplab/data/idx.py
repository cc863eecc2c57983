"""MNIST and Fashion-MNIST from IDX files (.gz or raw), downloaded with md5 checks if missing."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from sweeplab.data.base import Splits, carve
from sweeplab.data.classes import CLASSES
from sweeplab.data.download import download as fetch
from sweeplab.errors import SweeplabError, check_positive, check_seed

FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# md5 of the .gz files as published; the copies in shared/datasets match byte for byte.
SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion_mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}
# IDX type codes (the third header byte) for the formats used here.
_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or raw) into an array, checking its header against its length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise SweeplabError(
            f"{path} is truncated or corrupt ({e}); delete it so it is downloaded again, "
            "or copy a good file there"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise SweeplabError(f"{path} is not an IDX file of unsigned bytes; check the file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise SweeplabError(
            f"{path} holds {len(raw)} bytes, its header {dims} says {expected}: the file is "
            "truncated or corrupt; delete it so it is downloaded again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _locate(root: Path, stem: str, name: str, download: bool) -> Path:
    """Find stem(.gz) under root, downloading the .gz when missing and allowed."""
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    hint = f"put the {name} IDX files in data.root={root}"
    if not download:
        raise SweeplabError(
            f"data.root={root} has no {stem}(.gz); {hint} or set data.download=true"
        )
    source = SOURCES[name]
    mirrors = os.environ.get("SWEEPLAB_MIRROR", "").split() or source["mirrors"]
    errors = []
    for mirror in mirrors:
        try:
            return fetch(mirror + f"{stem}.gz", root / f"{stem}.gz", source["md5"][f"{stem}.gz"])
        except SweeplabError as e:
            errors.append(str(e))
    raise SweeplabError(f"data.root={root} has no {stem}(.gz) and {'; '.join(errors)}; {hint}")


def load_idx(
    name: str = "mnist",
    root: str = "data/mnist",
    val_size: int = 5000,
    split_seed: int = 0,
    download: bool = True,
) -> Splits:
    """Load MNIST-format IDX data as (N, 1, 28, 28) floats standardized with train statistics.

    Args:
        name: mnist or fashion_mnist (selects the download mirror and md5 sums).
        root: folder with the four IDX files.
        val_size: images carved from train for validation, fixed by split_seed.
        split_seed: seed of the fixed split (not the run seed).
        download: fetch missing files.
    Returns:
        Splits on the CPU.
    """
    if name not in SOURCES:
        raise SweeplabError(
            f"data.name={name!r} is not an IDX dataset; choose one of {list(SOURCES)}"
        )
    # Checked before any file is read or downloaded; the upper bound needs the data.
    check_positive("data.val_size", val_size, integer=True, example="5000")
    check_seed("data.split_seed", split_seed)
    base = Path(root).expanduser()
    arrays = {k: read_idx(_locate(base, stem, name, download)) for k, stem in FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_x"]) != len(arrays[f"{split}_y"]):
            raise SweeplabError(
                f"data.root={root}: {split} has {len(arrays[f'{split}_x'])} images but "
                f"{len(arrays[f'{split}_y'])} labels; the files do not belong together"
            )
    x = torch.from_numpy(arrays["train_x"].copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    (train_x, train_y), (val_x, val_y) = carve(x, y, val_size, split_seed)
    test_x = torch.from_numpy(arrays["test_x"].copy()).float().div_(255).unsqueeze(1)
    test_y = torch.from_numpy(arrays["test_y"].astype(np.int64))
    return Splits.standardized(
        name, (train_x, train_y), (val_x, val_y), (test_x, test_y), num_classes=10,
        raw=("pixel bytes 0-255 (uint8, as in the IDX file)", 255.0), classes=CLASSES[name],
    )  # fmt: skip
