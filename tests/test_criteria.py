"""Criteria: scores equal a direct autograd computation, models are left as found, errors.

test_masks.py checks every conf/pruning file for exact sparsity, determinism and zeros that
survive optimizers; this file checks what each criterion computes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from conftest import CONF, compose
from sweeplab.engine.task import instantiate
from sweeplab.errors import SweeplabError
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target
from sweeplab.pruning.gradient import Gradient
from sweeplab.pruning.grasp import GraSP
from sweeplab.pruning.hybrid import Hybrid, rank_normalized
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import apply_masks, prunable_parameters
from sweeplab.pruning.snip import SNIP
from sweeplab.pruning.synflow import SynFlow
from sweeplab.pruning.taylor import Taylor

# Unstructured strategies; files with a `granularity:` key remove structures physically
# (tests/test_structured.py walks those).
STRATEGIES = sorted(
    p.stem for p in (CONF / "pruning").glob("*.yaml") if "granularity:" not in p.read_text()
)
GEN = torch.Generator


def composed(strategy: str, sparsity: float) -> Pruner:
    """The pruner of conf/pruning/<strategy>.yaml; SynFlow with 10 rounds to save time."""
    # Rounds are float64 conv passes, slow on CPU; what these tests check does not depend on
    # their number (the layer-collapse test uses the default 100).
    fast = ["pruning.rounds=10"] if strategy == "synflow" else []
    return instantiate(
        compose([f"pruning={strategy}", f"pruning.sparsity={sparsity}", *fast]).pruning
    )


def conv_net(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """test_masks.py's small model: Conv2d(1,4,3)-ReLU-Flatten-Linear(144,16)-ReLU-Linear(16,3)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, 3)
    )  # fmt: skip
    return net.to(dtype)


def data(n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> list:
    """n batches of 16 random 1x8x8 images with labels in 0..2, as a list (same every pass)."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(16, 1, 8, 8, generator=g, dtype=dtype),
            torch.randint(0, 3, (16,), generator=g),
        )
        for _ in range(n)
    ]


def reference_gradient(model: nn.Module, batches: list) -> dict[str, torch.Tensor]:
    """Mean over batches of d(cross-entropy)/dw, computed directly with torch.autograd.grad."""
    params = prunable_parameters(model)
    total = {n: torch.zeros_like(w) for n, w in params.items()}
    for x, y in batches:
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
        for n, g in zip(params, grads, strict=True):
            total[n] += g
    return {n: t / len(batches) for n, t in total.items()}


def scores_of(pruner: Pruner, model: nn.Module, batches: list) -> dict[str, torch.Tensor]:
    return pruner.scores(model, prunable_parameters(model), batches, GEN().manual_seed(0))


def test_gradient_equals_the_accumulated_gradient() -> None:
    model, batches = conv_net(), data(3)
    ours = scores_of(Gradient(0.5, n_batches=3), model, batches)
    expected = reference_gradient(model, batches)
    for name, g in expected.items():
        torch.testing.assert_close(ours[name], g.abs(), rtol=1e-6, atol=1e-9)
    # n_batches=2 uses only the first two batches.
    two = scores_of(Gradient(0.5, n_batches=2), model, batches)
    assert all(
        torch.allclose(two[n], g.abs()) for n, g in reference_gradient(model, batches[:2]).items()
    )


def test_taylor_and_snip_equal_a_direct_autograd_computation() -> None:
    model, batches = conv_net(), data(2)
    grads = reference_gradient(model, batches[:1])
    weights = prunable_parameters(model)
    expected = {n: (weights[n].detach() * g).abs() for n, g in grads.items()}
    total = sum(float(s.sum()) for s in expected.values())

    taylor = scores_of(Taylor(0.5), model, batches)
    snip = scores_of(SNIP(0.5), model, batches)
    for name, s in expected.items():
        torch.testing.assert_close(taylor[name], s, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(snip[name], s / total, rtol=1e-6, atol=1e-9)
    assert sum(float(s.sum()) for s in snip.values()) == pytest.approx(1.0)


def test_grasp_equals_theta_times_an_explicit_hessian_gradient_product() -> None:
    # float64 so the double-backward product and the explicit Hessian agree to ~1e-12.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    batches = [(torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,)))]
    x, y = batches[0]
    temperature = 7.0
    params = prunable_parameters(model)
    names, shapes = list(params), [w.shape for w in params.values()]
    flat = torch.cat([w.detach().flatten() for w in params.values()])

    def loss(vector: torch.Tensor) -> torch.Tensor:
        chunks = vector.split([s.numel() for s in shapes])
        weights = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return F.cross_entropy(functional_call(model, weights, (x,)) / temperature, y)

    g = torch.autograd.functional.jacobian(loss, flat)
    hessian = torch.autograd.functional.hessian(loss, flat)
    raw = flat * (hessian @ g)  # θ ⊙ Hg, higher = keep (GraSP prunes the largest -θ ⊙ Hg)
    expected = raw / (raw.sum().abs() + 1e-10)

    ours = scores_of(GraSP(0.5, temperature=temperature), model, batches)
    torch.testing.assert_close(torch.cat([ours[n].flatten() for n in names]), expected)

    # The sign convention: GraSP removes the k largest -θ ⊙ Hg (alecwangcq/GraSP's topk).
    k = round(0.4 * flat.numel())
    masks = GraSP(0.4, temperature=temperature).masks(model, batches, GEN())
    pruned = torch.cat([m.flatten() for m in masks.values()]) == 0
    assert set(torch.nonzero(pruned).flatten().tolist()) == set(
        torch.topk(-raw, k).indices.tolist()
    )
    # ... which is not pruning by |θ ⊙ Hg|: the sign matters on this model.
    assert set(torch.topk(-raw, k).indices.tolist()) != set(
        torch.topk(-raw.abs(), k).indices.tolist()
    )


def test_synflow_scores_are_the_linearized_flow_and_ignore_the_data() -> None:
    model = conv_net()
    one = scores_of(SynFlow(0.5), model, data(1, seed=1))
    scaled = [(x * 100 + 3, (y + 1) % 3) for x, y in data(1, seed=2)]
    assert all(torch.equal(one[n], s) for n, s in scores_of(SynFlow(0.5), model, scaled).items())
    masks = [SynFlow(0.9, rounds=10).masks(model, d, GEN()) for d in (data(1, 1), scaled)]
    assert all(torch.equal(masks[0][n], masks[1][n]) for n in masks[0])

    # Reference: |θ ⊙ dR/dθ| with every parameter replaced by |θ|, R = sum of outputs of ones.
    linear = conv_net().double()
    with torch.no_grad():
        for p in linear.parameters():
            p.abs_()
    weights = prunable_parameters(linear)
    flow = linear(torch.ones(1, 1, 8, 8, dtype=torch.float64)).sum()
    grads = torch.autograd.grad(flow, list(weights.values()))
    expected = {n: (w * g).abs().detach() for (n, w), g in zip(weights.items(), grads, strict=True)}
    top = max(float(s.max()) for s in expected.values())
    for name, s in expected.items():
        torch.testing.assert_close(one[name], s / top)


def test_iterative_synflow_avoids_the_layer_collapse_of_magnitude() -> None:
    def mlp(scale: float = 1.0) -> nn.Module:
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Flatten(), nn.Linear(16, 64, bias=False), nn.ReLU(),
            nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 10, bias=False),
        )  # fmt: skip
        with torch.no_grad():  # scale one layer, unscale the next: the same function
            net[3].weight.mul_(scale)
            net[5].weight.div_(scale)
        return net

    batches = [(torch.randn(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))]
    kept = {}
    for label, pruner, scale in (
        ("magnitude", Magnitude(0.99), 1.0),
        ("one-shot synflow", SynFlow(0.99, rounds=1), 1.0),
        ("synflow", SynFlow(0.99), 1.0),
        ("synflow rescaled", SynFlow(0.99), 0.1),
    ):
        masks = pruner.masks(mlp(scale), batches, GEN())
        kept[label] = {n: int(m.sum()) for n, m in masks.items()}
    # At init, 99% global magnitude pruning empties a layer (the network computes a constant);
    # so does one round of SynFlow. 100 rounds keep every layer connected (Tanaka et al.).
    assert min(kept["magnitude"].values()) == 0, kept
    assert min(kept["one-shot synflow"].values()) == 0, kept
    assert min(kept["synflow"].values()) > 0, kept
    # SynFlow is invariant to rescaling a layer and unscaling the next (magnitude is not).
    assert kept["synflow rescaled"] == kept["synflow"]


def test_hybrid_with_weights_1_0_prunes_exactly_like_its_first_criterion() -> None:
    model, batches = conv_net(), data(1)
    for scope in ("global", "layer"):
        for sparsity in (0.3, 0.9):
            first = Taylor(sparsity, scope=scope).masks(model, batches, GEN())
            hybrid = Hybrid(
                sparsity, scope=scope, criteria=[Taylor(0.5), Magnitude(0.5)], weights=[1, 0]
            ).masks(model, batches, GEN())
            assert all(torch.equal(first[n], hybrid[n]) for n in first), (scope, sparsity)
    # Through the shipped config, with weights given per key.
    cfg = compose(["pruning=hybrid", "pruning.weights.magnitude=1", "pruning.weights.data=0"])
    from_yaml = instantiate(cfg.pruning).masks(model, batches, GEN())
    magnitude = Magnitude(0.9).masks(model, batches, GEN())
    assert all(torch.equal(magnitude[n], from_yaml[n]) for n in magnitude)


def test_hybrid_mixes_two_orderings() -> None:
    model, batches = conv_net(), data(1)
    crit = {"a": Taylor(0.5), "b": Magnitude(0.5)}
    params = prunable_parameters(model)
    mixed = Hybrid(0.5, criteria=crit, weights={"a": 0.25, "b": 0.75}).scores(
        model, params, batches, GEN()
    )
    ra = rank_normalized(Taylor(0.5).scores(model, params, batches, GEN()))
    rb = rank_normalized(Magnitude(0.5).scores(model, params, batches, GEN()))
    for name in params:
        torch.testing.assert_close(mixed[name], 0.25 * ra[name] + 0.75 * rb[name])


def test_rank_normalization_is_in_0_1_and_averages_ties() -> None:
    ranks = rank_normalized({"a": torch.tensor([5.0, 1.0, 5.0]), "b": torch.tensor([[-2.0, 9.0]])})
    assert ranks["a"].tolist() == [0.625, 0.25, 0.625]  # ranks 2.5, 1, 2.5 of 0..4, over 4
    assert ranks["b"].tolist() == [[0.0, 1.0]]


def bn_dropout_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(144, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3),
    )  # fmt: skip


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_scoring_leaves_the_model_exactly_as_found(strategy: str) -> None:
    model = bn_dropout_net()
    model(torch.randn(8, 1, 8, 8))  # non-trivial BatchNorm running statistics
    apply_masks(model, Magnitude(0.3).masks(model, [], GEN()))  # masks attached: weight_orig
    model.train()
    model[6].eval()  # a mixed mode must come back mixed
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()

    pruner = composed(strategy, 0.5)
    pruner.masks(model, data(2), GEN().manual_seed(0))

    after = model.state_dict()
    assert after.keys() == state.keys()
    # A criterion that declares updates_weights (SparseGPT) rewrites the prunable weights only.
    rewritten = {f"{n}_orig" for n in prunable_parameters(model)} if pruner.updates_weights else ()
    assert all(torch.equal(after[k], v) for k, v in state.items() if k not in rewritten), strategy
    assert any(not torch.equal(after[k], state[k]) for k in rewritten) == pruner.updates_weights
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # no draw from the global generator


@pytest.mark.parametrize("strategy", ["gradient", "taylor", "snip", "grasp", "synflow", "hybrid"])
def test_a_later_round_keeps_earlier_masks_and_exact_counts(strategy: str) -> None:
    model = conv_net()
    pruner = composed(strategy, 0.5)
    first = pruner.masks(model, data(1), GEN())
    apply_masks(model, first)
    with torch.no_grad():  # as a training-time callback might call it
        second = pruner.masks(model, data(1), GEN(), target=Target(0.75, 0.5), existing=first)
    for name, m in second.items():
        assert int(m[first[name] == 0].sum()) == 0, name
    survivors = sum(int(m.sum()) for m in first.values())
    assert sum(int(m.sum()) for m in second.values()) == round(0.5 * survivors)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pruning=gradient", "pruning.n_batches=0"], "pruning.n_batches=0 must be a positive"),
        (["pruning=taylor", "pruning.n_batches=-2"], "pruning.n_batches=-2 must be a positive"),
        (["pruning=snip", "pruning.n_batches=1.5"], "pruning.n_batches=1.5 must be a positive"),
        (["pruning=grasp", "pruning.temperature=0"], "pruning.temperature=0 must be a positive"),
        (["pruning=synflow", "pruning.rounds=0"], "pruning.rounds=0 must be a positive integer"),
        (["pruning=hybrid", "pruning.weights.data=-1"], "pruning.weights.data=-1 must be"),
        (["pruning=hybrid", "+pruning.weights.extra=1"], "pruning.weights has keys"),
        (["pruning=hybrid", "pruning.weights.data=0", "pruning.weights.magnitude=0"], "all zero"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(overrides: list[str], message: str) -> None:
    with pytest.raises(SweeplabError, match=message):
        instantiate(compose(overrides).pruning)


def test_bad_hybrid_lists_and_empty_data_are_refused() -> None:
    with pytest.raises(SweeplabError, match="has 0 criteria; a hybrid combines two or more"):
        Hybrid(0.5, criteria=[], weights=[])
    with pytest.raises(SweeplabError, match=r"weights=\[1.0\] has 1 entries for 2 criteria"):
        Hybrid(0.5, criteria=[Taylor(0.5), Magnitude(0.5)], weights=[1.0])
    with pytest.raises(SweeplabError, match="criteria.1 is a str, not a criterion"):
        Hybrid(0.5, criteria=[Taylor(0.5), "magnitude"], weights=[1, 1])
    for pruner in (Taylor(0.5), GraSP(0.5), SynFlow(0.5)):
        with pytest.raises(SweeplabError, match="non-empty training split"):
            pruner.masks(conv_net(), [], GEN())
