"""model=vit: the small vision transformer trains from the command line, its Linear layers take
unstructured and N:M masks, pruning=head_l1 removes whole heads and MLP units (a smaller ViT
that computes what the dense one computes without them), costs count the attention products,
and a patch that does not divide the image is refused before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import compose, rows_in
from sweeplab.engine.costs import macs
from sweeplab.engine.measure import params_total
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP
from sweeplab.models.vit import ViT
from sweeplab.pruning.masks import apply_masks
from sweeplab.pruning.nm import grouped
from sweeplab.pruning.structured.heads import HeadL1
from sweeplab.results import store
from test_bad_input import assert_no_work, assert_one_line_error

DIGITS = (1, 8, 8)
# A ViT small enough for 8x8 digits in about a second: 4 patches of 4x4 (+ the class token).
SMALL = ["model=vit", "model.patch=4", "model.width=32", "model.depth=2", "model.heads=4"]
QUICK = ["train.epochs=5", "finetune.epochs=1", "measure.latency=false"]
LINEARS = {"q", "k", "v", "proj", "fc1", "fc2"}


def small_vit(seed: int = 0, **kw: object) -> ViT:
    torch.manual_seed(seed)
    args = {"patch": 4, "width": 32, "depth": 2, "heads": 4} | kw
    return ViT(DIGITS, 10, **args).eval()  # type: ignore[arg-type]


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *DIGITS, generator=torch.Generator().manual_seed(seed))


def test_the_config_builds_the_default_vit_and_both_poolings() -> None:
    model = instantiate(compose(["model=vit"]).model, input_shape=[1, 28, 28], num_classes=10)
    # Per block: 2 LayerNorms (4 x 64), q/k/v/proj (4 x (64 x 64 + 64)), fc1 (64 x 128 + 128),
    # fc2 (128 x 64 + 64); patch conv 49 x 64 + 64, class token 64, 17 positions x 64, final
    # LayerNorm 128, head 64 x 10 + 10.
    block = 4 * 64 + 4 * (64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64)
    assert params_total(model) == 4 * block + 49 * 64 + 64 + 64 + 17 * 64 + 128 + 650 == 139_018
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    mean = ViT((1, 28, 28), 10, pool="mean")  # no class token, 16 positions
    assert params_total(mean) == 139_018 - 64 - 64 and mean(x).shape == (3, 10)
    with pytest.raises(SweeplabError, match=r"model.pool='max' is not one of \['cls', 'mean'\]"):
        ViT((1, 28, 28), 10, pool="max")
    with pytest.raises(SweeplabError, match=r"model.heads=3 does not divide model.width=64"):
        ViT((1, 28, 28), 10, heads=3)


def test_vit_trains_on_digits_from_the_command_line(tmp_path: Path, cli) -> None:
    results = tmp_path / "results"
    done = cli(["run", *SMALL, *QUICK, f"paths.results_dir={results}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = [store.read_row(p) for p in rows_in(results)]
    assert row["status"] == "ok" and row["model"] == "vit"
    assert row["acc_dense_test"] > 0.6  # chance is 0.1; 5 epochs reach ~0.85
    assert row["sparsity_achieved"] == pytest.approx(0.9, abs=1e-3)  # its layers were pruned


def test_a_patch_that_does_not_divide_the_image_is_refused_before_training(
    tmp_path: Path, cli
) -> None:
    results = tmp_path / "results"
    done = cli(["run", "model=vit", "model.patch=5", *QUICK, f"paths.results_dir={results}"],
               cwd=tmp_path)  # fmt: skip
    assert_one_line_error(
        done.returncode, done.stderr,
        "model.patch=5 does not divide the data's 8x8 images; use one of [2, 4, 8], e.g. "
        "model.patch=4",
    )  # fmt: skip
    assert_no_work(results)


def masks_for(overrides: list[str], model: nn.Module) -> dict[str, torch.Tensor]:
    pruner = instantiate(compose(overrides).pruning)
    batch = (images(), torch.arange(16) % 10)
    return pruner.masks(model, [batch], torch.Generator().manual_seed(0))


def test_global_magnitude_masks_every_linear_layer_to_the_exact_sparsity() -> None:
    model = small_vit()
    masks = masks_for(["pruning=global_magnitude", "pruning.sparsity=0.5"], model)
    linear = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert {n.removesuffix(".weight") for n in masks} == linear | {"patch_embed"}
    assert {n.rsplit(".", 2)[-2] for n in masks if "blocks" in n} == LINEARS
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(int(m.sum()) for m in masks.values()) - total // 2) <= 1
    apply_masks(model, masks)
    assert model.blocks[0].attn.q.weight.eq(0).sum() == masks["blocks.0.attn.q.weight"].eq(0).sum()
    assert model(images()).isfinite().all()


def test_2_4_keeps_two_of_every_four_inputs_in_every_linear_layer() -> None:
    model = small_vit()
    masks = masks_for(["pruning=global_magnitude", "pruning.pattern=2:4",
                       "pruning.sparsity=null"], model)  # fmt: skip
    assert masks.excluded == ("patch_embed.weight",)  # 1 input channel: no group of 4
    for name, mask in masks.items():
        if name in masks.excluded:
            assert bool(mask.all())
            continue
        counts = grouped(mask, 4).sum(1)
        assert torch.equal(counts, torch.full_like(counts, 2)), name
    assert len(masks) - 1 == 6 * 2 + 1  # q, k, v, proj, fc1, fc2 per block and the head


def zero_removed(model: ViT, pruned: ViT) -> None:
    """Zero, in model, the values and MLP units pruned lacks (found by comparing weights)."""
    for dense, small in zip(model.blocks, pruned.blocks, strict=True):
        for layer, kept_layer in ((dense.attn.v, small.attn.v), (dense.mlp.fc1, small.mlp.fc1)):
            kept = [
                i
                for i, row in enumerate(layer.weight)
                if any(torch.equal(row, r) for r in kept_layer.weight)
            ]
            assert len(kept) == kept_layer.out_features
            gone = [i for i in range(layer.out_features) if i not in kept]
            with torch.no_grad():
                layer.weight[gone] = 0
                layer.bias[gone] = 0


def test_head_pruning_removes_the_lowest_l1_heads_and_leaves_a_smaller_working_vit() -> None:
    model, x = small_vit(), images()
    pruned = HeadL1(ratio=0.5).prune(model, x, [], torch.Generator())
    for dense, small in zip(model.blocks, pruned.blocks, strict=True):
        attn, d = small.attn, dense.attn.head_dim
        assert attn.num_heads == 2 and attn.head_dim == d == 8
        assert attn.q.out_features == attn.k.out_features == attn.v.out_features == 16
        assert attn.proj.in_features == 16 and attn.proj.out_features == 32  # width kept
        assert small.mlp.fc1.out_features == small.mlp.fc2.in_features == 32
        # The two heads with the smallest sum |w| over their q, k, v rows are gone.
        l1 = sum(getattr(dense.attn, n).weight.abs().view(4, d, -1).sum((1, 2)) for n in "qkv")
        kept = sorted(torch.argsort(l1)[2:].tolist())
        assert torch.equal(attn.q.weight, dense.attn.q.weight.view(4, d, -1)[kept].flatten(0, 1))
    # Exactly a ViT built with 2 heads of 8 and 32 MLP units.
    assert params_total(pruned) == params_total(small_vit(heads=2, head_dim=8, mlp_ratio=1))
    assert macs(pruned, DIGITS) == macs(small_vit(heads=2, head_dim=8, mlp_ratio=1), DIGITS)
    # It computes what the dense model computes with those heads' values and units zeroed.
    zero_removed(model, pruned)
    torch.testing.assert_close(pruned(x), model(x), atol=1e-5, rtol=1e-5)


def test_global_head_pruning_keeps_a_head_per_block_and_a_plain_num_heads_is_updated() -> None:
    model, x = small_vit(depth=3), images()
    pruned = HeadL1(ratio=0.75, mlp_ratio=0.0, scope="global").prune(
        model, x, [], torch.Generator()
    )
    heads = [b.attn.num_heads for b in pruned.blocks]
    assert sum(heads) == 12 - 9 and min(heads) >= 1
    assert all(b.mlp.fc1.out_features == 64 for b in pruned.blocks)  # mlp_ratio=0
    assert pruned(x).shape == (16, 10)
    # A user attention with num_heads as a plain attribute gets it set.
    plain = small_vit()
    for block in plain.blocks:
        block.attn.__class__ = type("PlainHeads", (type(block.attn),), {"num_heads": None})
        block.attn.num_heads = 4
    smaller = HeadL1(ratio=0.5).prune(plain, x, [], torch.Generator())
    assert [b.attn.num_heads for b in smaller.blocks] == [2, 2] and smaller(x).shape == (16, 10)


def test_costs_count_the_attention_products_which_have_no_parameters() -> None:
    model = small_vit()
    tokens, patches, heads, d = 5, 4, 4, 8  # 4 patches and the class token
    # Each block's Linear layers run once per token, the patch conv once per patch, the head
    # once (on the class token).
    per_token = sum(m.weight.numel() for m in model.blocks.modules() if isinstance(m, nn.Linear))
    weights = tokens * per_token + patches * model.patch_embed.weight.numel()
    weights += model.head.weight.numel()
    products = 2 * 2 * heads * tokens * tokens * d  # q k^T and attn v, in each of 2 blocks
    assert macs(model, DIGITS) == weights + products


def test_head_pruning_refuses_a_model_without_attention_or_a_ratio_that_empties_it() -> None:
    x = images()
    with pytest.raises(SweeplabError, match="pruning=head_l1 needs attention modules"):
        HeadL1().check(MLP(DIGITS, 10), x)
    with pytest.raises(
        SweeplabError, match="pruning.ratio=0.9 would remove all 4 heads of blocks.0.attn"
    ):
        HeadL1(ratio=0.9).check(small_vit(), x)
    with pytest.raises(SweeplabError, match=r"pruning.exclude names unknown layers \['blk'\]"):
        HeadL1(exclude=["blk"]).check(small_vit(), x)


def test_head_pruning_through_the_command_line_writes_the_smaller_model_costs(
    tmp_path: Path, cli
) -> None:
    results = tmp_path / "results"
    args = ["pruning=head_l1", "pruning.ratio=0.5", f"paths.results_dir={results}"]
    done = cli(["run", *SMALL, *QUICK, *args], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = [store.read_row(p) for p in rows_in(results)]
    assert row["status"] == "ok" and row["granularity"] == "head"
    smaller = small_vit(heads=2, head_dim=8, mlp_ratio=1)
    assert row["params_total"] == row["params_nonzero"] == params_total(smaller)
    assert row["flops"] == macs(smaller, DIGITS) and row["flops_dense"] == macs(small_vit(), DIGITS)
    assert row["layer_sparsity"]["blocks.0.attn.q.weight"] == 0.5
    assert row["layer_sparsity"]["head.weight"] == 0.0


def test_channel_criteria_keep_heads_whole_and_l1_filter_narrows_the_embedding() -> None:
    model, x = small_vit(), images()
    neuron = instantiate(compose(["pruning=neuron_l1"]).pruning)
    with pytest.raises(SweeplabError, match=r"pruning=neuron_l1 would remove single channels of "
                       r"attention heads \(layer blocks.0.attn.v\); remove whole heads with "
                       r"pruning=head_l1, or keep them with "
                       r"pruning.exclude=\[blocks.0.attn,blocks.1.attn\]"):  # fmt: skip
        neuron.check(model, x)
    # l1_filter's one convolution, the patch embedding, roots the embedding dimension: every
    # layer norm, the class token and the positional embedding narrow with it; heads stay.
    narrow = instantiate(compose(["pruning=l1_filter"]).pruning).prune(
        model, x, [], torch.Generator()
    )
    assert narrow.pos_embed.shape == (1, 5, 16) and narrow.cls_token.shape == (1, 1, 16)
    assert [b.attn.num_heads for b in narrow.blocks] == [4, 4] and narrow(x).shape == (16, 10)
    assert params_total(narrow) == params_total(small_vit(width=16, head_dim=8, mlp_ratio=4))


@pytest.mark.parametrize("criterion", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_post_training_criteria_prune_every_linear_layer_of_the_vit(
    criterion: str, pattern: str | None
) -> None:
    """Calibrated layer by layer through attention: q, k and v share their input, proj reads
    the heads' mix; every Linear layer gets its count (per row for Wanda) or its pattern."""
    model = small_vit()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    shape = (
        ["pruning.pattern=2:4", "pruning.sparsity=null"] if pattern else ["pruning.sparsity=0.5"]
    )
    masks = masks_for([f"pruning={criterion}", *shape], model)
    assert {n.rsplit(".", 2)[-2] for n in masks if "blocks" in n} == LINEARS
    for name, mask in masks.items():
        if name == "patch_embed.weight" and pattern:
            continue  # one input channel: no group of 4
        if pattern:
            counts = grouped(mask, 4).sum(1)
            assert torch.equal(counts, torch.full_like(counts, 2)), name
        elif criterion == "wanda":  # every output row prunes half of its inputs
            rows = mask.flatten(1).sum(1)
            assert torch.equal(rows, torch.full_like(rows, mask[0].numel() // 2)), name
        else:
            assert int(mask.sum()) == mask.numel() - round(0.5 * mask.numel()), name
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    # SparseGPT rewrites the weights it keeps; Wanda leaves them as they were.
    assert bool(changed) == (criterion == "sparsegpt")
    apply_masks(model, masks)
    assert model(images()).isfinite().all()
