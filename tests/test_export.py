"""Export: a folder loadable with torch alone gives identical outputs; sparse payload as costed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST, rows_in
from sweeplab.data.base import Normalization, carve
from sweeplab.data.cifar import load_cifar, read_batch
from sweeplab.data.digits import load_digits
from sweeplab.data.idx import load_idx, read_idx
from sweeplab.engine import costs, row_weights
from sweeplab.engine.export import export_model, load_exported
from sweeplab.engine.reshape import shape_like
from sweeplab.errors import SweeplabError
from sweeplab.models.lenet import LeNet5
from sweeplab.models.mlp import MLP
from sweeplab.models.resnet_cifar import ResNetCifar
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import apply_masks
from sweeplab.pruning.structured.blocks import BlockRemoval
from sweeplab.pruning.structured.criteria import L1Filter
from sweeplab.results import store

CIFAR = (3, 32, 32)


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Outputs under inference mode (a loaded program is traced in eval mode already)."""
    with torch.inference_mode():
        return model(x)


def test_structured_model_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    dense = ResNetCifar(CIFAR, 10, 20).eval()
    pruned = L1Filter(0.5).prune(dense, torch.randn(1, *CIFAR), [], torch.Generator()).eval()
    out = export_model(pruned, torch.randn(1, *CIFAR), tmp_path / "resnet", sparse=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt", "load.py", "meta.json", "model.pt2"
    ]  # fmt: skip
    loaded = load_exported(out)
    for batch in (1, 5):  # any batch size, though traced at 2
        x = torch.randn(batch, *CIFAR)
        assert torch.equal(_outputs(loaded, x), _outputs(pruned, x))


def test_sparse_model_round_trip_without_sweeplab(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet5((1, 28, 28), 10).eval()
    apply_masks(model, Magnitude(0.99).masks(model, [], torch.Generator()))
    out = export_model(model, torch.randn(2, 1, 28, 28), tmp_path / "lenet", sparse=True)
    stored = torch.load(out / "weights.pt", weights_only=True)
    payload = 0
    for entry in stored.values():
        payload += sum(v.nbytes for v in entry.values() if isinstance(v, torch.Tensor))
    assert payload == costs.size_sparse_bytes(model)
    assert {e["format"] for e in stored.values()} == {"index", "bitmask", "dense"}
    x = torch.randn(3, 1, 28, 28)
    expected = _outputs(model, x)
    assert torch.equal(_outputs(load_exported(out), x), expected)
    # A user's process: sweeplab cannot be imported, the shipped loader still works.
    torch.save(x, tmp_path / "x.pt")
    script = (
        "import sys, torch; sys.modules['sweeplab'] = None; "
        f"sys.path.insert(0, {str(out)!r}); import load; "
        f"m = load.load({str(out)!r}); x = torch.load({str(tmp_path / 'x.pt')!r}); "
        f"torch.save(m(x).detach(), {str(tmp_path / 'y.pt')!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    assert torch.equal(torch.load(tmp_path / "y.pt"), expected)


def test_existing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SweeplabError, match="already exists"):
        export_model(LeNet5((1, 28, 28), 10), torch.randn(1, 1, 28, 28), tmp_path, sparse=False)
    with pytest.raises(SweeplabError, match="has no load.py"):
        load_exported(tmp_path)


def test_export_holds_no_data_beyond_its_sample(tmp_path: Path) -> None:
    """The sample input was a slice of the training tensor, a view of all of it, and the
    program saved that whole storage: 173 MB for a structured MNIST model (issue 15)."""
    torch.manual_seed(0)
    model = LeNet5((1, 28, 28), 10).eval()
    train_x = torch.randn(20_000, 1, 28, 28)  # 63 MB, as a training split would be
    out = export_model(model, train_x[:2], tmp_path / "lenet5", sparse=False)
    weights = sum(p.numel() * 4 for p in model.state_dict().values())
    size = (out / "model.pt2").stat().st_size
    assert size < weights + 2_000_000, f"model.pt2 is {size / 1e6:.1f} MB"


# -- the saved weights of a row, and `sweeplab export` from them ------------------------------

# Enough training that the digits MLP is right most of the time (so unnormalized inputs show).
RUN = ["train.epochs=6", "finetune.epochs=1", "measure.latency=false"]


def _row(results: Path, rid: str) -> dict:
    return store.read_row(store.row_path(results, rid))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, cli) -> tuple[Path, str]:
    """One finished unstructured digits run: (results dir, run id)."""
    results = tmp_path_factory.mktemp("digits") / "res"
    proc = cli(["run", *RUN, f"paths.results_dir={results}"], results.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = rows_in(results)
    return results, row.stem


def test_every_row_keeps_its_weights_in_the_encoding_its_size_counts(digits) -> None:
    results, rid = digits
    row, path = _row(results, rid), row_weights.weights_path(results, rid)
    assert path == results / "models" / f"{rid}.pt"
    assert row["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # Written like rows: the user's umask, not a private temp file's 0600.
    mode = stat.S_IMODE(store.row_path(results, rid).stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    blob = torch.load(path, weights_only=True)
    assert blob["run_id"] == rid and blob["structured"] is False
    payload = sum(
        v.nbytes
        for e in blob["tensors"].values()
        for v in e.values()
        if isinstance(v, torch.Tensor)
    )
    assert payload == row["size_sparse_bytes"]
    assert {e["format"] for e in blob["tensors"].values()} >= {"index", "dense"}


def test_export_loads_the_saved_weights_and_trains_nothing(
    digits, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, rid = digits

    def no_run(*args, **kwargs):
        raise AssertionError("export re-ran the pipeline")

    monkeypatch.setattr("sweeplab.engine.pipeline.run", no_run)
    out = tmp_path / "out"
    proc = cli(["export", rid, str(out), "--results-dir", str(results)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc = _row(results, rid)["acc_finetuned_test"]
    line = f"exported {rid} (saved weights) to {out}: test accuracy {acc:.4f} (as its row records)"
    assert line in proc.stdout and proc.stderr == ""
    test = load_digits()
    with torch.inference_mode():
        predicted = load_exported(out)(test.test_x).argmax(1)
    assert int((predicted == test.test_y).sum()) / len(test.test_y) == acc


def test_options_may_come_before_or_after_the_positionals(digits, tmp_path: Path, cli) -> None:
    results, rid = digits
    mine = "model._target_=sweeplab.models.mlp.MLP"  # the row's own class, named as trusted
    orders = {
        "after": ["export", rid, str(tmp_path / "a"), "--results-dir", str(results), mine],
        "before": ["export", "--results-dir", str(results), rid, str(tmp_path / "b"), mine],
        "between": ["export", rid, str(tmp_path / "c"), mine, "--results-dir", str(results)],
    }
    for name, args in orders.items():
        proc = cli(args, tmp_path)
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
    bad = cli(
        ["export", rid, str(tmp_path / "d"), "--results-dir", str(results), "--nope"], tmp_path
    )
    assert bad.returncode == 2 and "unrecognized arguments: --nope" in bad.stderr
    # `run`'s key for the folder, given to export: one line naming export's own option.
    runs_way = cli(["export", rid, str(tmp_path / "e"), f"paths.results_dir={results}"], tmp_path)
    assert runs_way.returncode == 2 and not (tmp_path / "e").exists()
    (line,) = runs_way.stderr.strip().splitlines()
    assert f"--results-dir {results}" in line


def test_weights_that_are_not_the_rows_are_refused(digits, tmp_path: Path, cli) -> None:
    results, rid = digits
    copy = tmp_path / "res"
    shutil.copytree(results, copy)
    path = row_weights.weights_path(copy, rid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit flipped: damaged, or another run's file
    path.write_bytes(bytes(data))
    proc = cli(["export", rid, str(tmp_path / "out"), "--results-dir", str(copy)], tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert f"{path} has sha256 " in line and "not the row's weights" in line and "--rebuild" in line
    assert not (tmp_path / "out").exists()


def test_a_row_from_before_weights_were_kept_names_rebuild(digits, tmp_path: Path, cli) -> None:
    results, rid = digits
    old = tmp_path / "res"
    shutil.copytree(results, old)
    shutil.rmtree(old / "models")
    path = store.row_path(old, rid)
    record = json.loads(path.read_text())
    del record["metrics"]["weights_sha256"]
    path.write_text(json.dumps(record))
    proc = cli(["export", rid, str(tmp_path / "a"), "--results-dir", str(old)], tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert f"row {rid} was written before runs kept their weights" in line
    assert line.endswith("export it with --rebuild, which re-runs prune and recovery")
    again = cli(
        ["export", rid, str(tmp_path / "b"), "--rebuild", "--results-dir", str(old)], tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{rid} (rebuilt) to" in again.stdout and "(as its row records)" in again.stdout


def test_each_round_of_an_iterative_run_exports_its_own_model(tmp_path: Path, cli) -> None:
    results = tmp_path / "res"
    args = ["run", *FAST, "measure.latency=false", "schedule=iterative", "schedule.rounds=2"]
    proc = cli([*args, f"paths.results_dir={results}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rid = next(p.stem for p in rows_in(results) if "-r" not in p.stem)
    assert sorted(p.stem for p in (results / "models").iterdir()) == [rid, f"{rid}-r1"]
    for row_id in (f"{rid}-r1", rid):
        out = tmp_path / row_id
        done = cli(["export", row_id, str(out), "--results-dir", str(results)], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        row = _row(results, row_id)
        assert json.loads((out / "meta.json").read_text())["acc_test"] == row["acc_finetuned_test"]
        stored = torch.load(out / "weights.pt", weights_only=True)
        payload = sum(
            v.nbytes for e in stored.values() for v in e.values() if isinstance(v, torch.Tensor)
        )
        assert payload == row["size_sparse_bytes"]  # round 1 is the less sparse model
    assert _row(results, f"{rid}-r1")["size_sparse_bytes"] > _row(results, rid)["size_sparse_bytes"]
    rebuild = cli(
        ["export", f"{rid}-r1", str(tmp_path / "x"), "--rebuild", "--results-dir", str(results)],
        tmp_path,
    )
    assert rebuild.returncode == 2
    assert f"{rid}-r1 is round 1 of run {rid}; --rebuild re-runs whole runs" in rebuild.stderr


@pytest.mark.parametrize(
    ("model", "pruner"),
    [
        ("resnet", L1Filter(0.5)),  # coupled channels across residual sums and shortcuts
        ("resnet", BlockRemoval(0.5, include_downsample=True, num_batches=1)),
        ("mlp", L1Filter(0.5, granularity="neuron")),
    ],
    ids=["channels", "blocks", "neurons"],
)
def test_a_fresh_model_takes_the_shapes_of_a_structurally_pruned_one(model, pruner) -> None:
    torch.manual_seed(0)
    shape = (3, 32, 32) if model == "resnet" else (1, 8, 8)
    dense = (ResNetCifar(shape, 10, 20) if model == "resnet" else MLP(shape, 10)).eval()
    x = torch.randn(4, *shape)
    batches = [(x, torch.tensor([0, 1, 2, 3]))]
    pruned = pruner.prune(dense, x[:1], batches, torch.Generator().manual_seed(0)).eval()
    assert costs.size_dense_bytes(pruned) < costs.size_dense_bytes(dense)
    state = costs.shippable(pruned)
    torch.manual_seed(1)  # another init: only the shapes may come from the saved state
    fresh = ResNetCifar(shape, 10, 20) if model == "resnet" else MLP(shape, 10)
    shape_like(fresh, state, x[:1])
    fresh.load_state_dict(state)  # strict: every name and shape as saved
    assert torch.equal(_outputs(fresh.eval(), x), _outputs(pruned, x))


def test_a_structured_run_exports_its_smaller_model_from_saved_weights(
    tiny_idx, tmp_path: Path, cli
) -> None:
    """MNIST-shaped data, LeNet-5 with half its channels removed: the fresh model takes the
    saved shapes, and model.pt2 holds the smaller model (and no data: see above)."""
    root = tiny_idx(n_train=64, n_test=200)
    results = tmp_path / "res"
    data = ["data=mnist", f"data.root={root}", "data.val_size=16", "data.download=false"]
    args = [*data, "model=lenet5", "pruning=l1_filter", *FAST, "measure.latency=false"]
    proc = cli(["run", *args, f"paths.results_dir={results}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rid,) = (p.stem for p in rows_in(results))
    assert torch.load(row_weights.weights_path(results, rid), weights_only=True)["structured"]
    out = tmp_path / "out"
    done = cli(["export", rid, str(out), "--results-dir", str(results)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(saved weights)" in done.stdout and "(as its row records)" in done.stdout
    row = _row(results, rid)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt", "load.py", "meta.json", "model.pt2"
    ]  # fmt: skip
    size = (out / "model.pt2").stat().st_size
    assert size < row["size_bytes"] + 200_000 < row["size_dense_bytes"], size
    model = load_exported(out)
    assert sum(p.numel() for p in model.parameters()) == row["params_total"] < 431_080


def _raw_digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits test split as scikit-learn ships it: intensities 0-16, not normalized."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    _, (test_x, test_y) = carve(x, y, round(len(x) * 0.2), 0)  # conf/data/digits.yaml's split
    return test_x, test_y


def _as_documented(raw: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """What an export's README.txt says to feed the model."""
    mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
    std = torch.tensor(norm.std).view(1, -1, 1, 1)
    return (raw / norm.scale - mean) / std


def test_every_dataset_states_the_normalization_its_loader_applied(tiny_idx, tmp_path) -> None:
    from test_cifar import make_folder

    digits = load_digits()
    assert torch.equal(_as_documented(_raw_digits_test()[0], digits.normalization), digits.test_x)
    assert digits.classes == tuple("0123456789")
    root = tiny_idx()
    mnist = load_idx("mnist", str(root), val_size=16, download=False)
    raw = torch.from_numpy(read_idx(root / "t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    assert mnist.normalization.scale == 255 and "0-255" in mnist.normalization.raw
    assert torch.equal(_as_documented(raw.float(), mnist.normalization), mnist.test_x)
    folder = make_folder(tmp_path)
    cifar = load_cifar("cifar10", str(tmp_path), val_size=10, download=False)
    raw, _ = read_batch(folder / "test_batch", b"labels")
    assert len(cifar.normalization.mean) == 3 and cifar.classes[0] == "airplane"
    assert torch.equal(_as_documented(raw.float(), cifar.normalization), cifar.test_x)
    assert cifar.to("cpu").normalization == cifar.normalization


USER = """
import json, sys
import torch
folder, data = sys.argv[1], torch.load(sys.argv[2])
sys.path.insert(0, folder)
import load
meta = json.load(open(folder + "/meta.json"))
norm = meta["normalization"]
mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
model = load.load(folder)
with torch.inference_mode():
    ok = model((data["raw"] / norm["scale"] - mean) / std).argmax(1) == data["y"]
    raw_ok = model(data["raw"]).argmax(1) == data["y"]
assert not [m for m in sys.modules if m.split(".")[0] == "sweeplab"], "sweeplab was imported"
print(json.dumps([int(ok.sum()), int(raw_ok.sum()), len(ok)]))
"""


def test_a_user_without_sweeplab_gets_the_rows_accuracy_from_raw_data(digits, tmp_path, cli):
    results, rid = digits
    out = tmp_path / "exported"
    assert cli(["export", rid, str(out), "--results-dir", str(results)], tmp_path).returncode == 0
    readme = (out / "README.txt").read_text()
    assert "Input x: float32, shape (N, 1, 8, 8)" in readme
    assert "Normalization: x = (raw - mean) / std with mean = 4.89" in readme and "0-16" in readme
    assert "Classes: the index is the label itself (0 to 9)." in readme and "meta.json" in readme
    raw, y = _raw_digits_test()
    torch.save({"raw": raw, "y": y}, tmp_path / "data.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", USER, str(out), str(tmp_path / "data.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    correct, raw_correct, n = json.loads(proc.stdout)
    assert correct / n == _row(results, rid)["acc_finetuned_test"] and correct / n > 0.8
    assert raw_correct < correct - 0.1 * n  # the stated normalization is what the model needs
