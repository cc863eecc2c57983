"""Sparse training from initialization (static, SET, RigL): one mask update against a
transcription of RigL's code, the invariants of a short run (exact sparsity after every update,
grown weights at zero), the dense gradient RigL grows by, rows, mixed-folder views, refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import FAST, rows_in
from sweeplab.data.digits import load_digits
from sweeplab.engine.mask_updates import MaskUpdates, Update
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.train import StepCallback, fit
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP
from sweeplab.pruning.dynamic import SET, DynamicSparse, RigL, drop_count
from sweeplab.pruning.masks import apply_masks
from sweeplab.results.analysis import summarize
from sweeplab.results.objectives import objective_values
from sweeplab.results.rows import load_rows

# -- google-research/rigl @ d39fc7d, rigl/sparse_optimizers_base.py, transcribed to numpy ------


def tf_top_k_order(x: np.ndarray) -> np.ndarray:
    """Indices of tf.nn.top_k(x, k=x.size): descending, equal values lower index first."""
    return np.argsort(-x, kind="stable")


def tf_cosine_decay(initial: float, step: int, decay_steps: int) -> float:
    """tf.train.cosine_decay with alpha=0 (get_drop_fraction's 'cosine', begin_step 0)."""
    return initial * 0.5 * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps))


def reference_update(
    mask: np.ndarray, weights: np.ndarray, score_grow: np.ndarray, drop_fraction: float,
    momentum: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """_get_update_op (reinit_when_same=False, grow_init='zeros') and reset_momentum
    (initial_acc_scale=0). score_drop = |mask * w| as generic_mask_update computes it, minus its
    1e-5 noise (the stated deviation; the weights here are far from 0 and from each other)."""
    score_drop = np.abs(mask * weights).reshape(-1)
    n_total = score_drop.size
    n_ones = int(mask.sum())
    n_prune = int(np.float32(n_ones) * np.float32(drop_fraction))  # tf.cast truncates
    n_keep = n_ones - n_prune
    mask1 = np.zeros(n_total)
    mask1[tf_top_k_order(score_drop)[:n_keep]] = 1  # scatter_nd of where(range < n_keep)
    grow = score_grow.reshape(-1)
    lifted = np.where(mask1 == 1, grow.min() - 1, grow)
    mask2 = np.zeros(n_total)
    mask2[tf_top_k_order(lifted)[:n_prune]] = 1
    assert (mask1 * mask2).sum() == 0  # the reference's Assert: disjoint
    mask2 = mask2.reshape(mask.shape)
    new_connections = (mask2 == 1) & (mask == 0)
    return (
        (mask1.reshape(mask.shape) + mask2),
        np.where(new_connections, 0.0, weights),
        np.where(new_connections, 0.0, momentum),
    )


# -- one update, entry by entry ---------------------------------------------------------------


def _layer(seed: int = 0) -> tuple[nn.Linear, dict[str, torch.Tensor]]:
    """A 8x6 Linear, 18 of 48 weights active, distinct |w|, masks attached."""
    rng = np.random.default_rng(seed)
    layer = nn.Linear(6, 8)
    with torch.no_grad():
        magnitudes = rng.permutation(np.arange(1, 49)) / 10
        layer.weight.copy_(torch.tensor(magnitudes * rng.choice([-1, 1], 48)).view(8, 6))
    mask = np.zeros(48)
    mask[rng.choice(48, 18, replace=False)] = 1
    apply_masks(layer, {"weight": torch.tensor(mask, dtype=torch.float32).view(8, 6)})
    return layer, {"weight": layer.weight_mask}


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_one_update_equals_the_reference_entry_by_entry(method: str) -> None:
    layer, masks = _layer()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(torch.randn(4, 6)).sum().backward()
    opt.step()  # creates the momentum buffers, which are then set to fixed values
    rng = np.random.default_rng(1)
    w = layer.weight_orig
    with torch.no_grad():
        w.copy_(torch.tensor(rng.permutation(np.arange(1, 49)) / 10).view(8, 6))
    opt.state[w]["momentum_buffer"].copy_(torch.tensor(rng.normal(size=(8, 6))))
    # Gradients with ties (rounded to 1 decimal), and the largest where an active weight is
    # about to be dropped: that position grows back and keeps its value, as in the reference.
    grad = torch.tensor(np.round(rng.normal(size=48), 1)).view(8, 6).float()
    active = masks["weight"].bool()
    weakest = torch.where(active, w.abs(), torch.tensor(math.inf)).argmin()
    grad.view(-1)[weakest] = 10.0
    pruner_cls = RigL if method == "rigl" else SET
    pruner = pruner_cls(0.5, drop_fraction=0.3, drop_fraction_anneal="constant")
    generator = torch.Generator().manual_seed(5)
    updates = MaskUpdates(layer, masks, pruner, [7], 20, generator)
    if method == "rigl":
        updates.gradients["weight"] = grad
        score_grow = grad.abs().numpy()
    else:
        score_grow = torch.rand((8, 6), generator=torch.Generator().manual_seed(5)).numpy()
    before = [t.detach().double().numpy().copy() for t in (masks["weight"], w)]
    momentum = opt.state[w]["momentum_buffer"].double().numpy().copy()

    done = updates.update(7, opt)

    ref_mask, ref_w, ref_momentum = reference_update(*before, score_grow, 0.3, momentum)
    assert np.array_equal(masks["weight"].numpy(), ref_mask)
    assert np.array_equal(w.detach().double().numpy(), ref_w)
    assert np.array_equal(opt.state[w]["momentum_buffer"].double().numpy(), ref_momentum)
    assert masks["weight"].sum() == 18 and done.moved["weight"] == int((ref_mask > before[0]).sum())
    if method == "rigl":
        assert masks["weight"].view(-1)[weakest] == 1 and w.view(-1)[weakest] != 0  # kept value
    assert done.moved["weight"] > 0


def test_cosine_drop_fraction_is_tf_cosine_decay_and_the_plan_stops_at_stop_at() -> None:
    pruner = RigL(0.9, update_every=7, drop_fraction=0.3, stop_at=0.75)
    total = 100  # end step 75
    for step in (0, 1, 7, 30, 74, 75, 90):
        assert pruner.fraction_at(step, total) == pytest.approx(tf_cosine_decay(0.3, step, 75))
    # Every 7th step up to 75; none at 0 (no update before training) nor after 75.
    assert pruner.update_steps(total) == list(range(7, 76, 7))
    assert RigL(0.9, update_every=5).update_steps(100)[-1] == 70  # 75's fraction is 0: no update
    constant = SET(0.9, update_every=5, drop_fraction_anneal="constant")
    assert constant.update_steps(100)[-1] == 75 and constant.fraction_at(75, 100) == 0.3
    # n_drop = int(n_active * fraction) in float32 as the reference (float64 gives 62).
    assert drop_count(torch.ones(90), 0.7) == int(np.float32(90) * np.float32(0.7)) == 63


def test_rigl_grows_by_the_dense_gradient_of_the_masked_weight() -> None:
    layer, masks = _layer()
    updates = MaskUpdates(layer, masks, RigL(0.5), [1], 10, torch.Generator())
    x, y = torch.randn(5, 6), torch.randint(0, 8, (5,))
    updates.on_train_start(None, None)  # type: ignore[arg-type]  # arms step 1
    F.cross_entropy(layer(x), y).backward()
    dense = (layer.weight_orig * layer.weight_mask).detach().requires_grad_(True)
    expected = torch.autograd.grad(F.cross_entropy(F.linear(x, dense, layer.bias), y), dense)[0]
    captured = updates.gradients["weight"]
    assert torch.allclose(captured, expected)
    assert bool((captured[masks["weight"] == 0] != 0).any())  # dense: nonzero where masked
    assert int((layer.weight_orig.grad[masks["weight"] == 0] != 0).sum()) == 0  # what w_orig gets
    updates.close()
    layer(x).sum().backward()  # hooks removed: nothing captured any more
    assert torch.equal(updates.gradients["weight"], captured)


# -- a short run: invariants after every update -----------------------------------------------


class _ZerosStayZero(StepCallback):
    """After every optimizer step: masked weights are exactly zero as the forward sees them."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.steps = model, 0

    def on_optimizer_step(self, module, step: int) -> None:  # noqa: ANN001
        for layer in self.model.modules():
            if hasattr(layer, "weight_mask"):
                effective = layer.weight_orig * layer.weight_mask
                assert int((effective[layer.weight_mask == 0] != 0).sum()) == 0
        self.steps = step


@pytest.mark.parametrize("method,optimizer", [("rigl", "sgd"), ("set", "adam"), ("rigl", "adam")])
def test_sparsity_is_exact_after_every_update_and_grown_weights_start_at_zero(
    method: str, optimizer: str
) -> None:
    splits = load_digits()
    torch.manual_seed(0)
    model = MLP(splits.input_shape, splits.num_classes, hidden=[32, 16])
    pruner: DynamicSparse = (RigL if method == "rigl" else SET)(0.9, update_every=2)
    initial = pruner.masks(model, [], torch.Generator().manual_seed(0))
    apply_masks(model, initial)
    layers = {n: model.get_submodule(n.rpartition(".")[0]) for n in initial}
    masks = {n: layers[n].weight_mask for n in initial}
    counts = {n: round(0.1 * m.numel()) for n, m in masks.items()}
    previous = {n: m.clone() for n, m in masks.items()}
    seen: list[Update] = []

    def check(update: Update) -> None:
        for name, mask in masks.items():
            assert int(mask.sum()) == counts[name], (update.step, name)  # exact, per layer
            grown = (mask == 1) & (previous[name] == 0)
            assert int(grown.sum()) == update.moved[name]
            assert int((layers[name].weight_orig[grown] != 0).sum()) == 0  # start at zero
            previous[name] = mask.clone()
        seen.append(update)

    cfg = TrainConfig(epochs=2, lr=0.05, optimizer=optimizer, weight_decay=5e-4)
    total = 2 * -(-len(splits.train_x) // cfg.batch_size)  # 20 steps, mask frozen after 15
    updates = MaskUpdates(
        model, masks, pruner, pruner.update_steps(total), total, torch.Generator(), check
    )
    zeros = _ZerosStayZero(model)
    fit(model, splits, cfg, seed=0, phase="train", validate=False, callbacks=[updates, zeros])
    updates.close()
    assert zeros.steps == total == 20
    assert [u.step for u in seen] == [2, 4, 6, 8, 10, 12, 14] and updates.changed > 0
    assert [u.fraction for u in seen] == sorted((u.fraction for u in seen), reverse=True)
    assert all(not torch.equal(masks[n], initial[n]) for n in masks)  # every layer moved


# -- the command line: rows, mixed-folder views, export, refusals ------------------------------

SPARSE = ["pruning.sparsity=0.9", *FAST, "finetune.epochs=0"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, cli) -> Path:  # noqa: ANN001
    """A results folder with static, SET and RigL rows beside global_magnitude's (seed 0)."""
    root = tmp_path_factory.mktemp("mixed")
    res = cli(
        ["run", "-m", "pruning=set,rigl,static,global_magnitude", *SPARSE,
         "paths.results_dir=results"], cwd=root,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return root / "results"


def _rows(results: Path) -> dict[str, dict]:
    rows = [json.loads(p.read_text()) for p in rows_in(results)]
    return {r["strategy"]: r for r in rows}


def test_a_sweep_writes_one_row_per_strategy_with_its_mask_updates(mixed: Path) -> None:
    rows = _rows(mixed)
    assert sorted(rows) == ["global_magnitude", "rigl", "set", "static"]
    for name in ("set", "rigl", "static"):
        m = rows[name]["metrics"]
        assert rows[name]["status"] == "ok" and m["sparsity_achieved"] == pytest.approx(0.9, 1e-3)
        assert m["acc_dense_test"] is None and m["dense_source"] == "none"
        assert m["acc_pruned_test"] == m["acc_finetuned_test"]  # finetune.epochs=0
        assert (m["mask_updates"] > 0 and m["mask_changed"] > 0) == (name != "static")
        # The same initialization and initial mask for the three (pairs by dense_id).
        assert rows[name]["dense_id"] == rows["global_magnitude"]["dense_id"]
    assert rows["static"]["metrics"]["mask_updates"] == 0
    assert rows["global_magnitude"]["metrics"]["acc_dense_test"] is not None


def test_tables_report_and_export_read_a_folder_that_mixes_them(mixed: Path, cli) -> None:  # noqa: ANN001
    dense = _rows(mixed)["global_magnitude"]["metrics"]["acc_dense_test"]
    table = cli(["table", "results", "--view", "points", "--format", "csv"], cwd=mixed.parent)
    assert table.returncode == 0, table.stderr
    lines = [line.split(",") for line in table.stdout.splitlines() if line]
    header, body = lines[0], lines[1:]
    col = {name: i for i, name in enumerate(header)}
    strategies = [line[col["strategy"]] for line in body]
    assert sorted(strategies) == ["dense", "global_magnitude", "rigl", "set", "static"]
    # The dense point is global_magnitude's model even though the sparse runs share its id,
    # whichever row comes first.
    dense_line = body[strategies.index("dense")]
    assert float(dense_line[col["acc"]]) == pytest.approx(dense)
    rows = load_rows(mixed)
    for order in (rows, rows.iloc[::-1].reset_index(drop=True)):
        points = summarize(order).points
        assert points.loc[points["strategy"] == "dense", "acc"].tolist() == pytest.approx([dense])
    for view in ([], ["--view", "compare", "--baseline", "static"]):
        table = cli(["table", "results", *view], cwd=mixed.parent)
        assert table.returncode == 0, table.stderr
        assert "rigl" in table.stdout and "set" in table.stdout
    report = cli(["report", "results", "-o", "out/report.html"], cwd=mixed.parent)
    assert report.returncode == 0, report.stderr
    assert "rigl" in (mixed.parent / "out" / "report.html").read_text()
    rid = _rows(mixed)["rigl"]["run_id"]
    export = cli(["export", rid, "exported", "--results-dir", "results"], cwd=mixed.parent)
    assert export.returncode == 0, export.stderr
    assert (mixed.parent / "exported" / "weights.pt").exists()


def test_a_search_for_the_sparsity_within_a_drop_names_the_missing_dense_accuracy(
    mixed: Path,
) -> None:
    rows = _rows(mixed)
    values = objective_values(rows["rigl"], ["acc_finetuned_val", "compression"], 0.01)
    assert values[0] == rows["rigl"]["metrics"]["acc_finetuned_val"]
    with pytest.raises(SweeplabError, match=r"\(rigl\) has no dense accuracy"):
        objective_values(rows["rigl"], ["sparsity_within_drop"], 0.01)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["pruning=rigl", "schedule=iterative"], "schedule=iterative cannot run with it"),
        (["pruning=set", "schedule=gradual"], "schedule=gradual cannot run with it"),
        (["pruning=rigl", "recovery=weight_rewind"], "recovery=weight_rewind cannot follow it"),
        (["pruning=static", "recovery=distill"], "recovery=distill cannot follow it"),
        (["pruning=rigl", "pruning.update_every=50"], "would never update its mask"),
        (["pruning=set", "pruning.drop_fraction=1.5"], "pruning.drop_fraction=1.5 is outside"),
        (["pruning=rigl", "pruning.drop_fraction_anneal=linear"], "'linear' is not one of"),
        (["pruning=rigl", "pruning.stop_at=0"], "pruning.stop_at=0 must be a positive"),
        (["pruning=rigl", "pruning.sparsity=null"], "pruning.sparsity=null is not a number"),
        (["pruning=rigl", "+pruning.threshold=0.1"], "pruning.threshold is not a setting"),
        (["pruning=set", "+pruning.pattern=2:4"], "pruning.pattern is not a setting"),
    ],
    ids=lambda v: v[1] if isinstance(v, list) else None,
)
def test_what_cannot_compose_is_refused_before_training(
    overrides: list[str],
    message: str,
    tmp_path: Path,
    cli,  # noqa: ANN001
) -> None:
    res = cli(["run", *overrides, *FAST, "paths.results_dir=results"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1
    assert not rows_in(tmp_path / "results")
    assert not (tmp_path / "results" / "cache").exists()  # nothing trained
