"""CIFAR: pickle reading, md5-checked download + safe extraction, standardization, augmentation."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import compose
from sweeplab.data import cifar
from sweeplab.data.augment import crop_flip
from sweeplab.data.download import md5sum
from sweeplab.errors import SweeplabError


def make_folder(root: Path, name: str = "cifar10", n: int = 12, seed: int = 0) -> Path:
    """A release folder of tiny batch files: n random images per file."""
    release = cifar.RELEASES[name]
    folder = root / release.folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for file in (*release.train, release.test):
        images = rng.integers(0, 256, size=(n, 3, 32, 32))
        labels = rng.integers(0, release.num_classes, size=n)
        cifar.write_batch(folder / file, images, labels, release.label_key)
    return folder


def test_cifar10_from_folder(tmp_path: Path) -> None:
    make_folder(tmp_path)
    splits = cifar.load_cifar("cifar10", str(tmp_path), val_size=10, download=False)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (50, 10, 12)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    mean, std = splits.train_x.mean(dim=(0, 2, 3)), splits.train_x.std(dim=(0, 2, 3))
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-5, rtol=0)
    again = cifar.load_cifar("cifar10", str(tmp_path), val_size=10, download=False)
    assert torch.equal(splits.val_x, again.val_x)  # the split is fixed by split_seed
    assert splits.augment and splits.to("cpu").augment  # carried to the device


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    make_folder(tmp_path, "cifar100", n=30)
    splits = cifar.load_cifar("cifar100", str(tmp_path), val_size=5, download=False, augment=False)
    assert splits.num_classes == 100 and len(splits.train_x) == 25 and not splits.augment


def _archive(tmp_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A tar.gz like the release (optionally with extra members), in a mirror folder."""
    make_folder(tmp_path / "src")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = cifar.pack_archive(tmp_path / "src" / "cifar-10-batches-py", mirror / "x.tar.gz")
    if extra:
        with tarfile.open(archive, "r:gz") as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in [*((m.name, d) for m, d in members), *extra.items()]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        archive.write_bytes(buffer.getvalue())
    return archive.rename(mirror / "cifar-10-python.tar.gz")


def test_download_checks_md5_and_extracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _archive(tmp_path)
    monkeypatch.setenv("SWEEPLAB_MIRROR", archive.parent.as_uri() + "/")
    root = tmp_path / "data"
    with pytest.raises(SweeplabError, match="has md5 .* expected c58f3010"):
        cifar.load_cifar("cifar10", str(root), val_size=10)
    assert not (root / "cifar-10-python.tar.gz").exists()
    release = dataclasses.replace(cifar.RELEASES["cifar10"], md5=md5sum(archive))
    monkeypatch.setitem(cifar.RELEASES, "cifar10", release)
    splits = cifar.load_cifar("cifar10", str(root), val_size=10)
    assert len(splits.train_x) == 50 and (root / "cifar-10-batches-py" / "test_batch").exists()


def test_extraction_writes_only_the_expected_files(tmp_path: Path) -> None:
    evil = {"../evil.txt": b"x", "cifar-10-batches-py/../../evil2.txt": b"x", "/tmp/abs": b"x"}
    archive = _archive(tmp_path, extra=evil)
    root = tmp_path / "deep" / "data"
    cifar.extract(archive, cifar.RELEASES["cifar10"], root)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*evil*"))
    assert written == []
    assert sorted(os.listdir(root / "cifar-10-batches-py")) == sorted(
        [*cifar.RELEASES["cifar10"].train, "test_batch"]
    )


def test_truncated_archive_and_bad_pickles(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    archive.write_bytes(archive.read_bytes()[:-500])
    with pytest.raises(SweeplabError, match="is not a complete cifar-10-python.tar.gz"):
        cifar.extract(archive, cifar.RELEASES["cifar10"], tmp_path / "out")
    bad = tmp_path / "bad"
    bad.write_bytes(pickle.dumps({b"data": os.system}))  # a global that must not load
    with pytest.raises(SweeplabError, match="is not a CIFAR batch file .*posix.system"):
        cifar.read_batch(bad, b"labels")


def test_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(SweeplabError, match="has no cifar-10-python.tar.gz; put"):
        cifar.load_cifar("cifar10", str(tmp_path), download=False)
    with pytest.raises(SweeplabError, match="data.name='svhn' is not a CIFAR dataset"):
        cifar.load_cifar("svhn", str(tmp_path))


def test_configs_compose() -> None:
    for name in ("cifar10", "cifar100"):
        cfg = compose([f"data={name}"])
        assert cfg.data.name == name and cfg.data.augment is True


def test_crop_flip_is_a_shifted_maybe_flipped_window() -> None:
    x = torch.randn(16, 3, 32, 32)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out, crop_flip(x, torch.Generator().manual_seed(0)))
    padded = F.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        windows = [
            (flip, padded[i, :, dy : dy + 32, dx : dx + 32])
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
        ]
        matches = [f for f, w in windows if torch.equal(out[i], w.flip(-1) if f else w)]
        assert matches, f"example {i} is no crop of its padded image"
        flips += matches[0]
    assert 0 < flips < len(x)


def test_crop_flip_pad_zero_only_flips() -> None:
    x = torch.randn(8, 3, 4, 4)
    out = crop_flip(x, torch.Generator().manual_seed(1), pad=0)
    for a, b in zip(out, x, strict=True):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    with pytest.raises(SweeplabError, match="needs a batch"):
        crop_flip(x[0], torch.Generator())
