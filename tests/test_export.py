"""Export: a folder loadable with torch alone gives identical outputs; sparse payload as costed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sweeplab.engine import costs
from sweeplab.engine.export import export_model, load_exported
from sweeplab.errors import SweeplabError
from sweeplab.models.lenet import LeNet5
from sweeplab.models.resnet_cifar import ResNetCifar
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import apply_masks
from sweeplab.pruning.structured.criteria import L1Filter

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
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "load.py", "model.pt2"]
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
