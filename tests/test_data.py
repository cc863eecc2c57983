"""Datasets: digits split, IDX reading (gz and raw), download with md5, clear data errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_idx
from sweeplab.data.base import TensorBatches
from sweeplab.data.digits import load_digits
from sweeplab.data.download import download, md5sum
from sweeplab.data.idx import load_idx, read_idx
from sweeplab.errors import SweeplabError


def test_digits_split_is_fixed_disjoint_and_standardized() -> None:
    a, b = load_digits(), load_digits()
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (1258, 180, 359)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.train_y, b.train_y)
    assert len(a.train_x) + len(a.val_x) + len(a.test_x) == 1797
    assert abs(float(a.train_x.mean())) < 1e-5 and abs(float(a.train_x.std()) - 1) < 1e-4
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10


@pytest.mark.parametrize("compress", [True, False])
def test_idx_gz_and_raw(tiny_idx, compress: bool) -> None:
    splits = load_idx(
        "mnist", str(tiny_idx(n_train=40, n_test=12, compress=compress)), val_size=8, download=False
    )
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (32, 8, 12)
    assert splits.input_shape == (1, 28, 28) and splits.train_y.dtype == torch.int64


def test_truncated_gz_is_named(tiny_idx) -> None:
    root = tiny_idx()
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(SweeplabError, match="train-images-idx3-ubyte.gz is truncated or corrupt"):
        load_idx("mnist", str(root), val_size=8, download=False)


def test_short_raw_file_is_named(tiny_idx) -> None:
    root = tiny_idx(compress=False)
    path = root / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(SweeplabError, match="header .* says"):
        read_idx(path)


def test_labels_outside_class_count(tiny_idx, tmp_path: Path) -> None:
    root = tiny_idx()
    write_idx(root / "train-labels-idx1-ubyte.gz", np.full(64, 12))
    with pytest.raises(SweeplabError, match=r"labels span \[12, 12\], outside \[0, 10\)"):
        load_idx("mnist", str(root), val_size=8, download=False)


def test_missing_root_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 (discard) on loopback refuses at once: the same path as a machine with no network.
    monkeypatch.setenv("SWEEPLAB_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(SweeplabError) as err:
        load_idx("mnist", str(tmp_path / "nowhere"), download=True)
    text = str(err.value)
    assert "nowhere has no train-images-idx3-ubyte" in text and "could not download" in text
    assert not (tmp_path / "nowhere" / "train-images-idx3-ubyte.gz").exists()


def test_download_checks_md5_and_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress(b"hello"))
    good = download(src.as_uri(), tmp_path / "out" / "a.gz", md5sum(src))
    assert good.read_bytes() == src.read_bytes()
    with pytest.raises(SweeplabError, match="expected 0+"):
        download(src.as_uri(), tmp_path / "out" / "b.gz", "0" * 32)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.gz"]


def test_download_fills_a_missing_root_from_a_mirror(tiny_idx, tmp_path: Path, monkeypatch) -> None:
    import sweeplab.data.idx as idx

    mirror = tiny_idx()
    sums = {p.name: md5sum(p) for p in mirror.iterdir()}
    monkeypatch.setitem(idx.SOURCES["mnist"], "md5", sums)
    monkeypatch.setenv("SWEEPLAB_MIRROR", mirror.as_uri() + "/")
    splits = load_idx("mnist", str(tmp_path / "fresh"), val_size=8)
    assert len(splits.test_x) == 32 and len(list((tmp_path / "fresh").iterdir())) == 4


def test_tensor_batches_cover_every_example_once_per_epoch() -> None:
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    batches = TensorBatches(x, y, batch_size=4, shuffle=True, seed=1)
    assert len(batches) == 3
    epoch1 = torch.cat([b[1] for b in batches])
    epoch2 = torch.cat([b[1] for b in batches])
    assert sorted(epoch1.tolist()) == list(range(10)) and not torch.equal(epoch1, epoch2)
    again = TensorBatches(x, y, batch_size=4, shuffle=True, seed=1)
    assert torch.equal(torch.cat([b[1] for b in again]), epoch1)
