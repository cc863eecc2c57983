"""Structured pruning of a researcher's own conv net (issue 15): a user-defined CNN with a
residual sum, named with model=custom, loses whole channels through Torch-Pruning's dependency
graph; the channels tied by the residual sum are removed together, so the smaller model runs."""

from __future__ import annotations

from pathlib import Path

from conftest import FAST, rows_in
from sweeplab.results import store

RESCNN = """
import torch.nn.functional as F
from torch import nn


class ResCNN(nn.Module):
    def __init__(self, input_shape: list[int], num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.conv_a = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(width)
        self.conv_b = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        h = F.relu(self.stem_bn(self.stem(x)))
        r = F.relu(self.bn_a(self.conv_a(h)))
        h = F.relu(h + self.bn_b(self.conv_b(r)))  # stem and conv_b share their channels
        return self.head(h.mean((2, 3)))
"""


def test_filter_pruning_removes_coupled_channels_of_a_user_residual_cnn(
    tmp_path: Path, cli
) -> None:
    (tmp_path / "rescnn.py").write_text(RESCNN)
    results = tmp_path / "results"
    args = ["model=custom", "model._target_=rescnn.ResCNN", "pruning=l1_filter"]
    done = cli(
        ["run", *args, "pruning.ratio=0.5", "measure.latency=false", *FAST,
         f"paths.results_dir={results}"],
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = [store.read_row(p) for p in rows_in(results)]
    assert row["status"] == "ok" and row["model"] == "ResCNN" and row["granularity"] == "channel"
    # Half of the 16 channels in each coupled group: stem + conv_b (the residual sum) and
    # conv_a. The head's output (the classes) stays. A stem pruned apart from conv_b would
    # make the sum fail, so the run finishing with these counts means the coupling held.
    width, classes = 8, 10
    params = 1 * width * 9 + 2 * width * width * 9 + 3 * 2 * width + width * classes + classes
    assert row["params_total"] == params == 1362
    assert row["layer_sparsity"] == {
        "stem.weight": 0.5, "conv_a.weight": 0.75, "conv_b.weight": 0.75, "head.weight": 0.5,
    }  # fmt: skip
    assert row["flops"] < row["flops_dense"] / 3
    assert row["acc_finetuned_test"] > 0.1  # the smaller model runs and learns
