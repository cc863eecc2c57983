"""SynFlow against a direct transcription of its authors' code on small models.

References (read from the authors' repositories):
- Synaptic-Flow (ganguli-lab/Synaptic-Flow): prune.py `prune_loop` (exponential schedule,
  density = d ** ((epoch + 1) / epochs)), Pruners/pruners.py `SynFlow.score` (|θ ⊙ dR/dθ| of
  the |θ| network on an all-ones input) and `Pruner._global_mask`
  (k = int((1.0 - density) * numel) entries at or below the k-th score are pruned).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

import sweeplab.pruning.synflow as synflow_module
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
    select = synflow_module.select

    def recording(*args, **kwargs) -> dict[str, Tensor]:
        recorded.append(select(*args, **kwargs))
        return recorded[-1]

    monkeypatch.setattr(synflow_module, "select", recording)
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
