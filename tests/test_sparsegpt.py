"""SparseGPT: the authors' fasterprune entry by entry (masks equal, weights within 1e-5), the
reconstruction beating masking alone, N:M groups, later rounds, refusals before training.

Reference: IST-DASLab/sparsegpt (commit 147d215), sparsegpt.py `SparseGPT.add_batch` and
`SparseGPT.fasterprune`, transcribed below as `ReferenceSparseGPT` without the quantizer, the
DEBUG prints, transformers.Conv1D and torch.cuda.synchronize (CPU). Licensed Apache-2.0 by
its authors.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import FAST, rows_in
from sweeplab.pruning.budget import Target
from sweeplab.pruning.masks import apply_masks, prunable_parameters
from sweeplab.pruning.nm import grouped
from sweeplab.pruning.obs import block_counts
from sweeplab.pruning.sparsegpt import SparseGPT, as_columns, from_columns


class ReferenceSparseGPT:
    """The authors' SparseGPT class (add_batch, fasterprune), transcribed for one layer."""

    def __init__(self, layer):
        self.layer = layer
        self.dev = self.layer.weight.device
        W = layer.weight.data.clone()
        if isinstance(self.layer, nn.Conv2d):
            W = W.flatten(1)
        self.rows = W.shape[0]
        self.columns = W.shape[1]
        self.H = torch.zeros((self.columns, self.columns), device=self.dev)
        self.nsamples = 0

    def add_batch(self, inp, out, blocksize=1024):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        if isinstance(self.layer, nn.Linear):
            if len(inp.shape) == 3:
                inp = inp.reshape((-1, inp.shape[-1]))
            inp = inp.t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterprune(self, sparsity, prunen=0, prunem=0, blocksize=128, percdamp=0.01):
        W = self.layer.weight.data.clone()
        if isinstance(self.layer, nn.Conv2d):
            W = W.flatten(1)
        W = W.float()

        H = self.H
        del self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0

        Losses = torch.zeros(self.rows, device=self.dev)

        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns, device=self.dev)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H

        mask = None

        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1

            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Losses1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]

            if prunen == 0:
                if mask is not None:
                    mask1 = mask[:, i1:i2]
                else:
                    tmp = W1**2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
                    thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
                    mask1 = tmp <= thresh
            else:
                mask1 = torch.zeros_like(W1) == 1

            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]

                if prunen != 0 and i % prunem == 0:
                    tmp = (
                        W1[:, i : (i + prunem)] ** 2
                        / (torch.diag(Hinv1)[i : (i + prunem)].reshape((1, -1))) ** 2
                    )
                    mask1.scatter_(1, i + torch.topk(tmp, prunen, dim=1, largest=False)[1], True)

                q = w.clone()
                q[mask1[:, i]] = 0

                Q1[:, i] = q
                Losses1[:, i] = (w - q) ** 2 / d**2

                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1

            W[:, i1:i2] = Q1
            Losses += torch.sum(Losses1, 1) / 2

            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

        self.layer.weight.data = W.reshape(self.layer.weight.shape).to(self.layer.weight.data.dtype)


def reference_model(model: nn.Sequential, chunks: list[torch.Tensor], **prune) -> nn.Module:
    """The authors' sequential pass (opt.py opt_sequential), every Linear its own block:
    calibrate a layer on the pruned model's inputs, fasterprune it, go on. Returns the model."""
    for index, layer in enumerate(model):
        if not isinstance(layer, nn.Linear):
            continue
        gpt = ReferenceSparseGPT(layer)
        for x in chunks:
            inp = model[:index](x)
            gpt.add_batch(inp.unsqueeze(1), None)  # each example one sequence of length 1
        gpt.fasterprune(**prune)
    return model


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 8))


def calibration(n: int = 96, features: int = 256, seed: int = 1) -> list[tuple]:
    """Correlated inputs (a random mixing of Gaussians) in batches of 32."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(features, features, generator=g) / features**0.5
    x = torch.randn(n, features, generator=g) @ mixing + 0.3
    return [(x[i : i + 32], torch.zeros(len(x[i : i + 32]), dtype=torch.long)) for i in (0, 32, 64)]


def ours(model: nn.Module, batches: list, **kw) -> dict[str, torch.Tensor]:
    pruner = SparseGPT(**{"calibration": 96, **kw})
    masks = pruner.masks(model, batches, torch.Generator())
    return masks


@pytest.mark.parametrize(
    ("kw", "reference"),
    [
        (dict(sparsity=0.5, rounding="reference"), dict(sparsity=0.5)),
        (dict(sparsity=0.83, rounding="reference", blocksize=64),
         dict(sparsity=0.83, blocksize=64)),
        (dict(pattern="2:4"), dict(sparsity=0, prunen=2, prunem=4)),
        (dict(pattern="1:4", damp=0.1), dict(sparsity=0, prunen=3, prunem=4, percdamp=0.1)),
    ],
    ids=["0.5", "0.83-block64", "2:4", "1:4-damp0.1"],
)  # fmt: skip
def test_masks_and_weights_equal_the_authors_fasterprune(kw: dict, reference: dict) -> None:
    batches = calibration()
    model, expected = mlp(), reference_model(mlp(), [x for x, _ in batches], **reference)
    masks = ours(model, batches, **kw)
    for name, w in prunable_parameters(model).items():
        ref = prunable_parameters(expected)[name].detach()
        assert torch.equal(masks[name], (ref != 0).float()), name
        torch.testing.assert_close(w.detach(), ref, rtol=0, atol=1e-5)
    # Not masking alone: the kept weights moved.
    assert not torch.equal(model[0].weight * masks["0.weight"], mlp()[0].weight * masks["0.weight"])


def test_a_conv_layer_is_its_unfolded_linear() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
    x = torch.randn(40, 3, 9, 9)
    # The authors' Linear path on the flattened kernel, fed nn.Unfold's patches as
    # IST-DASLab/gptq (2d65066) gptq.py add_batch unfolds a Conv2d's inputs: input feature =
    # (in_channel, kernel row, kernel column), one sample per image.
    linear = nn.Linear(27, 6)
    linear.weight.data = conv.weight.detach().flatten(1).clone()
    gpt = ReferenceSparseGPT(linear)
    gpt.add_batch(nn.Unfold(3, padding=1, stride=2)(x).transpose(1, 2), None)
    gpt.fasterprune(0.6, blocksize=8)
    expected = linear.weight.detach().view(conv.weight.shape)

    model = nn.Sequential(conv)
    masks = SparseGPT(0.6, rounding="reference", blocksize=8, calibration=40).masks(
        model, [(x, torch.zeros(40))], None
    )
    assert torch.equal(masks["0.weight"], (expected != 0).float())
    torch.testing.assert_close(conv.weight.detach(), expected, rtol=0, atol=1e-5)


def test_reconstruction_beats_masking_alone_on_the_calibration_data() -> None:
    batches = calibration()
    x = torch.cat([b for b, _ in batches])
    for kw in (dict(sparsity=0.7), dict(pattern="2:4")):
        dense, model = mlp(), mlp()
        masks = ours(model[:1], batches, **kw)  # the first layer alone
        w, w_masked, w_new = dense[0].weight, dense[0].weight * masks["0.weight"], model[0].weight
        assert bool((w_new[masks["0.weight"] == 0] == 0).all())
        masked_error = torch.linalg.norm(x @ (w - w_masked).t())
        reconstructed_error = torch.linalg.norm(x @ (w - w_new).t())
        assert reconstructed_error < 0.8 * masked_error, (kw, reconstructed_error, masked_error)


def test_exact_counts_per_layer_spread_over_blocks() -> None:
    assert block_counts([0, 0, 0], [100, 100, 50], 125) == [50, 50, 25]
    assert block_counts([0, 0], [3, 3], 3) == [2, 1]  # a tie: the earlier block
    assert block_counts([40, 0], [50, 50], 60) == [43, 17]  # forced, then 20 by free share
    assert sum(block_counts([7, 1, 0], [64, 64, 8], 91)) == 91
    for sparsity in (0.0, 0.31, 0.5, 0.97):
        masks = ours(mlp(), calibration(), sparsity=sparsity, blocksize=48)
        for name, m in masks.items():
            assert int((m == 0).sum()) == round(sparsity * m.numel()), (sparsity, name)


def conv_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 8),
    )  # fmt: skip


def test_nm_groups_are_valid_in_every_group_of_linear_and_conv_layers() -> None:
    x = torch.randn(24, 8, 6, 6, generator=torch.Generator().manual_seed(0))
    for pattern, keep in (("2:4", 2), ("1:4", 1), ("4:8", 4)):
        model = conv_net()
        masks = SparseGPT(pattern=pattern, blocksize=64).masks(model, [(x, x[:, 0, 0, 0])], None)
        m = int(pattern.split(":")[1])
        for name, mask in masks.items():
            assert (grouped(mask, m).sum(dim=1) == keep).all(), (pattern, name)
        weights = prunable_parameters(model)
        assert all(bool((weights[n][masks[n] == 0] == 0).all()) for n in masks)
    # Columns (position, channel) for the groups, and back.
    w = torch.randn(4, 8, 3, 3)
    assert torch.equal(from_columns(as_columns(w, True), w.shape, True), w)
    assert torch.equal(as_columns(w, True)[:, :8], w[:, :, 0, 0])


def test_a_later_round_keeps_earlier_masks_and_updates_weight_orig() -> None:
    batches = calibration()
    model = mlp()
    pruner = SparseGPT(0.75, calibration=96)
    first = pruner.masks(model, batches, torch.Generator(), target=Target(0.5, 0.5))
    apply_masks(model, first)
    before = model[0].weight_orig.detach().clone()
    second = pruner.masks(model, batches, None, target=Target(0.75, 0.5), existing=first)
    for name, m in second.items():
        assert int(m[first[name] == 0].sum()) == 0, name
        assert int((m == 0).sum()) == round(0.75 * m.numel()), name
    assert not torch.equal(model[0].weight_orig, before)  # updated in place, under the mask
    apply_masks(model, second)
    assert bool((model[0].weight[second["0.weight"] == 0] == 0).all())
    twice = SparseGPT(pattern="2:4").masks(mlp(), batches, None, target=Target(0.25))
    assert all((grouped(m, 4).sum(dim=1) == 3).all() for m in twice.values())  # 3:4 first


def test_a_layer_outside_the_forward_pass_or_of_another_type_is_refused() -> None:
    from sweeplab.errors import SweeplabError

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = Net()
    before = model.used.weight.detach().clone()
    with pytest.raises(SweeplabError, match=r"layers \['unused'\] never run"):
        SparseGPT(0.5).masks(model, [(torch.randn(8, 4), None)], None)
    assert torch.equal(model.used.weight, before)  # left as found
    conv1d = nn.Sequential(nn.Conv1d(2, 2, 3))
    with pytest.raises(SweeplabError, match=r"layer 0 is a Conv1d: add it to pruning.exclude"):
        SparseGPT(0.5).check(conv1d, torch.randn(1, 2, 8))
    with pytest.raises(SweeplabError, match="no scores to combine"):
        SparseGPT(0.5).scores(model, {}, [], None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pruning.calibration=0"], "pruning.calibration=0 must be a positive integer; e.g. "
         "pruning.calibration=128"),
        (["pruning.damp=-0.1"], "pruning.damp=-0.1 must be a finite number >= 0; e.g. "
         "pruning.damp=0.01"),
        (["pruning.blocksize=0"], "pruning.blocksize=0 must be a positive integer; e.g. "
         "pruning.blocksize=128"),
        (["pruning.blocksize=6", "pruning.pattern=2:4", "pruning.sparsity=null"],
         "pruning.blocksize=6 splits the groups of pruning.pattern=2:4; use a multiple of 4"),
        (["pruning.scope=global"], "pruning.scope='global' is not one of ['layer'] for "
         "pruning=sparsegpt"),
        (["pruning.rounding=floor"], "pruning.rounding='floor' is not one of"),
        (["+pruning.threshold=0.1", "pruning.sparsity=null"], "pruning=sparsegpt prunes "
         "counts, not by pruning.threshold"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_before_training(overrides, message, tmp_path: Path, cli) -> None:
    from test_bad_input import assert_no_work, assert_one_line_error

    res = tmp_path / "res"
    args = ["run", *FAST, "pruning=sparsegpt", *overrides, f"paths.results_dir={res}"]
    proc = cli(args, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, message)
    assert_no_work(res)
    assert rows_in(res) == []
