"""Wanda: the authors' scoring and per-row sort entry by entry (unstructured and N:M), conv
layers as their unfolded Linear, exact per-row counts, valid N:M groups, the calibration
examples, the command line, refusals before training.

Reference: locuslab/wanda (commit 8e8fc87), lib/layerwrapper.py `WrappedGPT.add_batch` and
lib/prune.py `prune_wanda` (its per-layer scoring and masking, every Linear its own block),
transcribed below. Licensed MIT by its authors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import FAST, rows_in
from sweeplab.errors import SweeplabError
from sweeplab.pruning.budget import Target
from sweeplab.pruning.calibration import features
from sweeplab.pruning.distribution import layer_sparsities
from sweeplab.pruning.masks import apply_masks, prunable_parameters
from sweeplab.pruning.nm import grouped
from sweeplab.pruning.wanda import Wanda, wanda_scores


class ReferenceWrappedGPT:
    """The authors' WrappedGPT: a running mean of each input feature's squared norm."""

    def __init__(self, layer, layer_id=0, layer_name="none"):
        self.layer = layer
        self.dev = self.layer.weight.device
        self.rows = layer.weight.data.shape[0]
        self.columns = layer.weight.data.shape[1]
        self.scaler_row = torch.zeros((self.columns), device=self.dev)
        self.nsamples = 0

    def add_batch(self, inp, out):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        if isinstance(self.layer, nn.Linear):
            if len(inp.shape) == 3:
                inp = inp.reshape((-1, inp.shape[-1]))
            inp = inp.t()
        self.scaler_row *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = inp.type(torch.float32)
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.nsamples


def reference_wanda(
    model: nn.Sequential, chunks: list, sparsity_ratio: float, prune_n=0, prune_m=0
):
    """prune_wanda's loop with every Linear its own block: calibrate it on the inputs through
    the earlier (pruned) layers, score, mask, zero; returns the masks (True = keep)."""
    keep = {}
    for index, layer in enumerate(model):
        if not isinstance(layer, nn.Linear):
            continue
        wrapped = ReferenceWrappedGPT(layer)
        for x in chunks:
            wrapped.add_batch(model[:index](x).unsqueeze(1), None)  # one sequence per example
        W_metric = torch.abs(layer.weight.data) * torch.sqrt(wrapped.scaler_row.reshape((1, -1)))
        W_mask = torch.zeros_like(W_metric) == 1
        if prune_n != 0:
            for ii in range(W_metric.shape[1]):
                if ii % prune_m == 0:
                    tmp = W_metric[:, ii : (ii + prune_m)].float()
                    W_mask.scatter_(1, ii + torch.topk(tmp, prune_n, dim=1, largest=False)[1], True)
        else:
            sort_res = torch.sort(W_metric, dim=-1, stable=True)
            indices = sort_res[1][:, : int(W_metric.shape[1] * sparsity_ratio)]
            W_mask.scatter_(1, indices, True)
        layer.weight.data[W_mask] = 0
        keep[f"{index}.weight"] = ~W_mask
    return keep


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8))


def batches(n: int = 3, size: int = 16, features: int = 32, seed: int = 1) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(features, generator=g) * 3  # features of unequal norms
    return [(torch.randn(size, features, generator=g) * scale, torch.zeros(size)) for _ in range(n)]


@pytest.mark.parametrize(
    ("kw", "reference"),
    [
        (dict(sparsity=0.55, rounding="floor"), dict(sparsity_ratio=0.55)),
        (dict(sparsity=0.9, rounding="floor"), dict(sparsity_ratio=0.9)),
        (dict(pattern="2:4"), dict(sparsity_ratio=0, prune_n=2, prune_m=4)),
        (dict(pattern="1:4"), dict(sparsity_ratio=0, prune_n=3, prune_m=4)),
        (dict(pattern="4:8"), dict(sparsity_ratio=0, prune_n=4, prune_m=8)),
    ],
    ids=["0.55", "0.9", "2:4", "1:4", "4:8"],
)
def test_masks_equal_the_authors_prune_wanda(kw: dict, reference: dict) -> None:
    data = batches()
    expected = reference_wanda(mlp(), [x for x, _ in data], **reference)
    model = mlp()
    masks = Wanda(**kw, calibration=48).masks(model, data, None)
    assert masks.keys() == expected.keys()
    for name, keep in expected.items():
        assert torch.equal(masks[name], keep.float()), name
    assert all(
        torch.equal(w, v) for w, v in zip(model.parameters(), mlp().parameters(), strict=True)
    )


def test_rounding_round_prunes_one_more_per_row_where_the_reference_floors() -> None:
    data = batches()
    expected = reference_wanda(mlp(), [x for x, _ in data], 0.55)["0.weight"]  # int(17.6) = 17
    ours = Wanda(0.55, calibration=48).masks(mlp(), data, None)["0.weight"]  # round: 18
    assert bool((ours[~expected] == 0).all())  # what the reference prunes, and one more
    assert ((~expected).sum(dim=1) == 17).all() and ((ours == 0).sum(dim=1) == 18).all()


def test_conv_features_are_its_unfolded_patches() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    x = torch.randn(4, 3, 9, 8)
    rows = features(conv, x)  # (examples x positions, 3 * 3 * 2)
    out = conv(x)
    torch.testing.assert_close(
        rows @ conv.weight.flatten(1).t() + conv.bias,
        out.permute(0, 2, 3, 1).reshape(-1, 5),
    )
    # ||X_j||^2 by hand: for each kernel position, the padded input that position reads.
    padded = F.pad(x, (2, 2, 1, 1))
    squares = torch.zeros(3, 3, 2)
    for kh in range(3):
        for kw in range(2):
            window = padded[
                :, :, kh : kh + 2 * out.shape[2] - 1 : 2, 2 * kw : 2 * kw + out.shape[3]
            ]
            squares[:, kh, kw] = (window**2).sum(dim=(0, 2, 3))
    scores = wanda_scores(conv.weight, conv, iter([x[:2], x[2:]]))
    torch.testing.assert_close(scores, conv.weight.abs() * squares.sqrt())
    # "same" padding and a non-zero padding mode unfold as the layer pads.
    for layer in (
        nn.Conv2d(3, 2, 3, padding="same"),
        nn.Conv2d(3, 2, 3, padding=1, padding_mode="circular"),
    ):
        out = layer(x).permute(0, 2, 3, 1).reshape(-1, 2)
        torch.testing.assert_close(
            features(layer, x) @ layer.weight.flatten(1).t() + layer.bias, out
        )


def conv_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3),
        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
    )  # fmt: skip


def images(n: int = 24, seed: int = 0) -> list[tuple]:
    x = torch.randn(n, 8, 6, 6, generator=torch.Generator().manual_seed(seed))
    return [(x[:16], torch.zeros(16)), (x[16:], torch.zeros(n - 16))]


@pytest.mark.parametrize("rounding", ["round", "floor"])
def test_every_row_prunes_exactly_its_count_also_in_later_rounds(rounding: str) -> None:
    def rows_pruned(mask: torch.Tensor) -> torch.Tensor:
        return (mask.flatten(1) == 0).sum(dim=1)

    count = round if rounding == "round" else int
    for sparsity in (0.3, 0.5, 0.83):
        model = conv_net()
        first = Wanda(sparsity / 2, rounding=rounding).masks(model, images(), None)
        apply_masks(model, first)
        target = Target(sparsity)
        second = Wanda(sparsity, rounding=rounding).masks(
            model, images(), None, target=target, existing=first
        )
        for name, mask in second.items():
            n = mask[0].numel()
            assert (rows_pruned(first[name]) == count(n * sparsity / 2)).all(), name
            assert (rows_pruned(mask) == count(n * sparsity)).all(), (sparsity, name)
            assert int(mask[first[name] == 0].sum()) == 0, name  # pruned before stays pruned
    # A distribution sets each layer's sparsity; the rows of a layer still prune alike.
    params = prunable_parameters(conv_net())
    shares = layer_sparsities("erk", {n: tuple(w.shape) for n, w in params.items()}, 0.7)
    masks = Wanda(0.7, distribution="erk", rounding=rounding).masks(conv_net(), images(), None)
    for name, mask in masks.items():
        assert (rows_pruned(mask) == count(mask[0].numel() * shares[name])).all(), name


def test_nm_groups_are_valid_in_every_group_of_linear_and_conv_layers() -> None:
    for pattern, keep in (("2:4", 2), ("1:4", 1), ("4:8", 4)):
        m = int(pattern.split(":")[1])
        masks = Wanda(pattern=pattern).masks(conv_net(), images(), None)
        for name, mask in masks.items():
            assert (grouped(mask, m).sum(dim=1) == keep).all(), (pattern, name)
        assert masks.fields() == {"nm_pattern": pattern, "nm_excluded": []}


def test_calibration_reads_the_first_examples_of_the_batches() -> None:
    data = batches(n=3)
    first_20 = [data[0], (data[1][0][:4], data[1][1][:4])]
    a = Wanda(0.5, calibration=20).masks(mlp(), data, None)
    assert all(
        torch.equal(a[n], m)
        for n, m in Wanda(0.5, calibration=20).masks(mlp(), first_20, None).items()
    )
    b = Wanda(0.5, calibration=16).masks(mlp(), data, None)
    assert any(not torch.equal(a[n], b[n]) for n in a)  # the 4 more examples count
    # More than the split holds: all of it.
    c = Wanda(0.5, calibration=1000).masks(mlp(), data, None)
    assert all(
        torch.equal(c[n], m) for n, m in Wanda(0.5, calibration=48).masks(mlp(), data, None).items()
    )
    with pytest.raises(SweeplabError, match="non-empty training split"):
        Wanda(0.5).masks(mlp(), [], None)


def test_scores_for_a_hybrid_are_one_pass_over_the_model_as_given() -> None:
    model, data = mlp(), batches()
    x = torch.cat([b for b, _ in data])
    scores = Wanda(0.5).scores(model, prunable_parameters(model), data, None)
    hidden = model[:2](x)
    torch.testing.assert_close(scores["2.weight"], model[2].weight.abs() * hidden.norm(dim=0))
    torch.testing.assert_close(scores["0.weight"], model[0].weight.abs() * x.norm(dim=0))


def test_the_command_line_runs_wanda_and_a_sweep_with_magnitude_into_one_table(
    tmp_path: Path, cli
) -> None:
    res = tmp_path / "res"
    common = [*FAST, "finetune.epochs=0", "measure.latency=false", f"paths.results_dir={res}"]
    one = cli(["run", "pruning=wanda", *common], cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "strategy=wanda sparsity_requested=0.5" in one.stdout
    sweep = cli(
        ["run", "-m", "pruning=sparsegpt,global_magnitude", "pruning.sparsity=0.5", *common],
        cwd=tmp_path,
    )
    assert sweep.returncode == 0, sweep.stderr
    rows = {r["strategy"]: r for r in (json.loads(p.read_text()) for p in rows_in(res))}
    assert set(rows) == {"wanda", "sparsegpt", "global_magnitude"}
    for row in rows.values():
        m = row["metrics"]
        assert m["sparsity_achieved"] == 0.5 and m["acc_pruned_test"] == m["acc_finetuned_test"]
    assert rows["wanda"]["config"]["pruning"]["scope"] == "row"
    table = cli(["table", str(res)], cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    pivot = table.stdout[: table.stdout.index("Pareto table")]
    assert {"| wanda ", "| sparsegpt ", "| global_magnitude "} <= {
        line[: line.index(" ", 2) + 1] for line in pivot.splitlines() if line.startswith("| ")
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pruning.calibration=0"], "pruning.calibration=0 must be a positive integer; e.g. "
         "pruning.calibration=128"),
        (["pruning.scope=global"], "pruning.scope='global' is not one of ['row', 'layer'] for "
         "pruning=wanda"),
        (["pruning.rounding=up"], "pruning.rounding='up' is not one of ['round', 'floor']"),
        (["pruning.sparsity=0.995"], "pruning.sparsity=0.995 prunes all 64 inputs of every row "
         "of layer net.1 (pruning.scope=row); lower pruning.sparsity below 0.9922, set "
         "pruning.rounding=floor or pruning.exclude=[net.1]"),
        (["+pruning.quality=1", "pruning.sparsity=null"], "pruning=wanda prunes counts, not by "
         "pruning.quality"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_before_training(overrides, message, tmp_path: Path, cli) -> None:
    from test_bad_input import assert_no_work, assert_one_line_error

    res = tmp_path / "res"
    proc = cli(
        ["run", *FAST, "pruning=wanda", *overrides, f"paths.results_dir={res}"], cwd=tmp_path
    )
    assert_one_line_error(proc.returncode, proc.stderr, message)
    assert_no_work(res)
