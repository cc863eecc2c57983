"""CIFAR-10 and CIFAR-100 from the python-pickle release, downloaded with an md5 check."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sweeplab.data.base import Normalization, Splits, carve
from sweeplab.data.classes import CLASSES
from sweeplab.data.download import download as fetch
from sweeplab.errors import SweeplabError, check_positive, check_seed


@dataclass(frozen=True)
class Release:
    """One CIFAR archive: where it comes from, what it holds."""

    archive: str
    md5: str
    folder: str  # the folder inside the archive
    train: tuple[str, ...]  # pickle files of the training split
    test: str
    label_key: bytes
    num_classes: int


RELEASES = {
    "cifar10": Release(
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
        10,
    ),
    "cifar100": Release(
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
        ("train",),
        "test",
        b"fine_labels",
        100,
    ),
}
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
# A CIFAR pickle holds dicts, lists, bytes and numpy arrays; nothing else may be unpickled.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR file")
        return super().find_class(module, name)


def read_batch(path: Path, label_key: bytes) -> tuple[Tensor, Tensor]:
    """One pickle file as (N, 3, 32, 32) uint8 images and int64 labels."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
        raise SweeplabError(
            f"{path} is not a CIFAR batch file ({e}); delete it so it is extracted again"
        ) from None
    if len(images) != len(labels):
        raise SweeplabError(f"{path} holds {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels)


def extract(archive: Path, release: Release, dest: Path) -> Path:
    """Extract only the release's batch files from archive into dest/release.folder.

    No member path is trusted: each expected file is looked up by its exact name and written
    to a fixed path, so an archive cannot write outside dest. Each file appears atomically.
    """
    folder = dest / release.folder
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in (*release.train, release.test):
                member = tar.getmember(f"{release.folder}/{name}")
                source = tar.extractfile(member) if member.isfile() else None
                if source is None:
                    raise KeyError(name)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
                with os.fdopen(fd, "wb") as out:
                    out.write(source.read())
                os.replace(tmp, folder / name)
    except (tarfile.TarError, KeyError, EOFError, OSError) as e:
        raise SweeplabError(
            f"{archive} is not a complete {release.archive} ({e}); delete it so it is "
            "downloaded again"
        ) from None
    return folder


def _locate(root: Path, release: Release, download: bool) -> Path:
    """The folder of batch files under root: extracted already, from the archive, or fetched."""
    folder = root / release.folder
    needed = (*release.train, release.test)
    if all((folder / n).exists() for n in needed):
        return folder
    archive = root / release.archive
    if not archive.exists():
        hint = f"put {release.archive} (or its extracted {release.folder}/) in data.root={root}"
        if not download:
            raise SweeplabError(f"data.root={root} has no {release.archive}; {hint}")
        mirrors = os.environ.get("SWEEPLAB_MIRROR", "").split() or MIRRORS
        errors = []
        for mirror in mirrors:
            try:
                fetch(mirror + release.archive, archive, release.md5)
                break
            except SweeplabError as e:
                errors.append(str(e))
        else:
            raise SweeplabError(
                f"data.root={root} has no {release.archive} and {'; '.join(errors)}; {hint}"
            )
    return extract(archive, release, root)


def _standardize(train: Tensor, *others: Tensor) -> tuple[list[Tensor], Normalization]:
    """Scale uint8 images to [0, 1], then standardize each channel with train statistics."""
    x = train.float().div_(255)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True)
    normalization = Normalization(
        "pixel bytes 0-255 (uint8, RGB)", 255.0, tuple(mean.flatten().tolist()),
        tuple(std.flatten().tolist()),
    )  # fmt: skip
    return [(t.float().div_(255) - mean) / std for t in (train, *others)], normalization


def load_cifar(
    name: str = "cifar10",
    root: str = "data/cifar10",
    val_size: int = 5000,
    split_seed: int = 0,
    download: bool = True,
    augment: bool = True,
) -> Splits:
    """Load CIFAR-10/100 as (N, 3, 32, 32) floats standardized per channel with train statistics.

    Args:
        name: cifar10 or cifar100 (fine labels, 100 classes).
        root: folder holding the .tar.gz archive or its extracted folder.
        val_size: images carved from the 50,000 training images for validation.
        split_seed: seed of the fixed split (not the run seed).
        download: fetch the archive when missing (md5-checked).
        augment: training batches get crop_flip (pad 4) on the device; evaluation never.
    Returns:
        Splits on the CPU.
    """
    if name not in RELEASES:
        raise SweeplabError(
            f"data.name={name!r} is not a CIFAR dataset; use one of {list(RELEASES)}"
        )
    # Checked before any file is read or downloaded; the upper bound needs the data.
    check_positive("data.val_size", val_size, integer=True, example="5000")
    check_seed("data.split_seed", split_seed)
    release = RELEASES[name]
    folder = _locate(Path(root).expanduser(), release, download)
    parts = [read_batch(folder / f, release.label_key) for f in release.train]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    (train_x, train_y), (val_x, val_y) = carve(x, y, val_size, split_seed)
    test_x, test_y = read_batch(folder / release.test, release.label_key)
    (train_x, val_x, test_x), normalization = _standardize(train_x, val_x, test_x)
    return Splits(
        name=name,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=release.num_classes,
        augment=bool(augment),
        normalization=normalization,
        classes=CLASSES[name],
    ).validate()


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: bytes) -> None:
    """Write a CIFAR-format pickle (for tests and small local datasets)."""
    blob = {
        b"data": images.reshape(len(images), -1).astype(np.uint8),
        label_key: [int(v) for v in labels],
    }
    path.write_bytes(pickle.dumps(blob, protocol=2))


def pack_archive(folder: Path, archive: Path) -> Path:
    """tar.gz a folder of batch files under its own name, as the CIFAR release is packed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    archive.write_bytes(buffer.getvalue())
    return archive
