"""SynFlow and GraSP against direct transcriptions of their authors' code on small models.

References (read from the authors' repositories):
- Synaptic-Flow (ganguli-lab/Synaptic-Flow): prune.py `prune_loop` (exponential schedule,
  density = d ** ((epoch + 1) / epochs)), Pruners/pruners.py `SynFlow.score` (|θ ⊙ dR/dθ| of
  the |θ| network on an all-ones input) and `Pruner._global_mask`
  (k = int((1.0 - density) * numel) entries at or below the k-th score are pruned).
- GraSP (alecwangcq/GraSP): pruner/GraSP.py `GraSP` (a deep copy of the model in the mode it
  was given, g from a first pass without graph, then z = sum(g * grad) backward per batch,
  score = -θ ⊙ Hg normalized by |sum| + eps; the largest are pruned).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from conftest import compose
from sweeplab.engine.task import instantiate
from sweeplab.errors import SweeplabError
from sweeplab.pruning.grasp import GraSP
from sweeplab.pruning.masks import prunable_parameters
from sweeplab.pruning.synflow import SynFlow

GEN = torch.Generator


def _randomize_batch_norm(model: nn.Module, seed: int) -> nn.Module:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 3 + 0.2)
    return model


def small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 16),
        nn.ReLU(), nn.Linear(16, 3),
    )  # fmt: skip
    return _randomize_batch_norm(net, seed)


def small_conv(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(96, 3),
    )  # fmt: skip
    return _randomize_batch_norm(net, seed)


MODELS = {"mlp": small_mlp, "conv": small_conv}


def batches(n: int, size: int = 16, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 1, 8, 8, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(n)
    ]


# SynFlow


def reference_kept(total: int, density: float, epochs: int) -> list[int]:
    """Weights kept after each round of prune_loop + Pruner._global_mask, from their formulas."""
    return [total - int((1.0 - density ** ((e + 1) / epochs)) * total) for e in range(epochs)]


def reference_synflow(model: nn.Module, density: float, epochs: int) -> list[dict[str, Tensor]]:
    """Masks after each round of Synaptic-Flow's prune_loop with SynFlow, scope global.

    Transcribed in float64 (the reference's model.double() is commented out; ours is float64),
    eval mode (prune_loop's train_mode=False). Masked layers multiply weight by mask in their
    forward, so the gradient of a pruned entry, hence its score, is zero.
    """
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            t.abs_()  # linearize(): every state_dict entry, buffers included
    weights = prunable_parameters(net)
    masks = {n: torch.ones_like(w) for n, w in weights.items()}
    ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    rounds = []
    for epoch in range(epochs):
        masked = {n: w * masks[n] for n, w in weights.items()}
        output = functional_call(net, masked, (ones,))
        grads = torch.autograd.grad(output.sum(), list(weights.values()))
        scores = {
            n: (g * w).detach().abs() for (n, w), g in zip(weights.items(), grads, strict=True)
        }
        sparse = density ** ((epoch + 1) / epochs)
        global_scores = torch.cat([torch.flatten(v) for v in scores.values()])
        k = int((1.0 - sparse) * global_scores.numel())
        if not k < 1:
            threshold, _ = torch.kthvalue(global_scores, k)
            masks = {n: torch.where(s <= threshold, 0.0, 1.0) for n, s in scores.items()}
            # No ties at the threshold on these models, so the reference prunes exactly k.
            assert sum(int((m == 0).sum()) for m in masks.values()) == k
        rounds.append(masks)
    return rounds


def our_synflow_rounds(
    model: nn.Module, sparsity: float, rounds: int, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Tensor]]:
    """SynFlow's masks after each of its rounds (select's outputs, recorded)."""
    recorded: list[dict[str, Tensor]] = []
    select = SynFlow.select

    def recording(*args, **kwargs) -> dict[str, Tensor]:
        recorded.append(select(*args, **kwargs))
        return recorded[-1]

    monkeypatch.setattr(SynFlow, "select", recording)
    SynFlow(sparsity, rounds=rounds).masks(model, batches(1), GEN())
    return recorded


@pytest.mark.parametrize("model_name", list(MODELS))
def test_synflow_keeps_the_references_count_every_intermediate_round(
    model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MODELS[model_name]()
    sparsity, rounds = 0.9, 100
    total = sum(w.numel() for w in prunable_parameters(model).values())
    ours = [
        sum(int(m.sum()) for m in masks.values())
        for masks in our_synflow_rounds(model, sparsity, rounds, monkeypatch)
    ]
    expected = reference_kept(total, 1.0 - sparsity, rounds)
    assert ours[:-1] == expected[:-1]
    # The last round prunes the target rounded, as every criterion's one-shot prune does.
    assert ours[-1] == total - round(sparsity * total)


@pytest.mark.parametrize("model_name", list(MODELS))
def test_synflow_masks_equal_the_reference_loop_entry_by_entry(
    model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MODELS[model_name]()
    sparsity, rounds = 0.8, 20
    ours = our_synflow_rounds(model, sparsity, rounds, monkeypatch)
    theirs = reference_synflow(model, 1.0 - sparsity, rounds)
    for r, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        diff = sum(int((a[n] != b[n]).sum()) for n in a)
        if r < rounds - 1:
            assert diff == 0, (model_name, r)
        else:  # the last round's count may differ by its rounding (see above), no more
            kept = [sum(int(m.sum()) for m in masks.values()) for masks in (a, b)]
            assert diff == abs(kept[0] - kept[1]) <= 1, (model_name, r)


# GraSP


def reference_grasp(model: nn.Module, data: list[tuple[Tensor, Tensor]], t: float) -> Tensor:
    """-θ ⊙ Hg / (|sum| + eps) of pruner/GraSP.py, flattened, on a deep copy as it was given.

    Each (x, y) in data plays one of the reference's half-batches; reinit=False (sweeplab
    scores the model it is given).
    """
    net = copy.deepcopy(model)
    weights = list(prunable_parameters(net).values())
    grad_w = None
    for x, y in data:
        grad_w_p = torch.autograd.grad(F.cross_entropy(net(x) / t, y), weights)
        grad_w = (
            list(grad_w_p)
            if grad_w is None
            else [a + b for a, b in zip(grad_w, grad_w_p, strict=True)]
        )
    for x, y in data:
        grad_f = torch.autograd.grad(F.cross_entropy(net(x) / t, y), weights, create_graph=True)
        z = sum((g.data * f).sum() for g, f in zip(grad_w, grad_f, strict=True))
        z.backward()
    scores = torch.cat([(-w.data * w.grad).flatten() for w in weights])
    return scores / (scores.sum().abs() + 1e-10)


def flat_scores(pruner: GraSP, model: nn.Module, data: list) -> Tensor:
    """Our scores, flattened, rescaled to sum to ±1 exactly.

    The reference sums g and Hg over batches where we average, so its eps (1e-10) weighs
    differently in |sum| + eps: scores agree up to a positive factor (~1e-5 from 1 here).
    """
    params = prunable_parameters(model)
    scores = pruner.scores(model, params, data, GEN())
    flat = torch.cat([scores[n].flatten() for n in params])
    return flat / flat.sum().abs()


def unit(scores: Tensor) -> Tensor:
    return scores / scores.sum().abs()


@pytest.mark.parametrize("model_name", list(MODELS))
def test_grasp_scores_batch_norm_in_train_mode_as_the_authors(model_name: str) -> None:
    model = MODELS[model_name]().double()
    data = [(x.double(), y) for x, y in batches(2)]
    train = reference_grasp(model.train(), data, 200.0)
    evaluated = reference_grasp(model.eval(), data, 200.0)
    assert not torch.allclose(train, evaluated, rtol=1e-2, atol=0)  # the mode matters here
    for mode in (True, False):  # whatever mode the caller left the model in
        model.train(mode)
        # Ours is θ ⊙ Hg (higher = keep), the negative of the authors' -θ ⊙ Hg.
        torch.testing.assert_close(flat_scores(GraSP(0.5, n_batches=2), model, data), -unit(train))
        ours_eval = flat_scores(GraSP(0.5, n_batches=2, batch_norm="eval"), model, data)
        torch.testing.assert_close(ours_eval, -unit(evaluated))


@pytest.mark.parametrize("mode", [True, False])
def test_grasp_leaves_buffers_and_modes_as_found(mode: bool) -> None:
    model = small_conv().train(mode)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    GraSP(0.5).masks(model, batches(2), GEN())
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in state.items())  # running stats, counters
    assert [m.training for m in model.modules()] == modes


def test_grasp_batch_norm_is_a_config_choice_and_checked() -> None:
    assert instantiate(compose(["pruning=grasp"]).pruning).batch_norm == "train"
    pruner = instantiate(compose(["pruning=grasp", "pruning.batch_norm=eval"]).pruning)
    assert pruner.batch_norm == "eval"
    with pytest.raises(SweeplabError, match=r"pruning.batch_norm='test' is not one of"):
        instantiate(compose(["pruning=grasp", "pruning.batch_norm=test"]).pruning)
