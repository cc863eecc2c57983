"""N:M semi-structured sparsity: valid groups for every criterion, NVIDIA ASP's masks entry by
entry, excluded layers, tightening rounds, the encoded size, the latency reason, refusals.

Reference: NVIDIA apex ASP (NVIDIA/apex, apex/contrib/sparsity/sparse_masklib.py `create_mask`
and `mn_1d_best`), transcribed below on the CPU.
"""

from __future__ import annotations

import json
import math
from itertools import permutations
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from conftest import FAST, compose, rows_in
from sweeplab.engine import costs
from sweeplab.engine.plain import plain_copy
from sweeplab.engine.schedules import cubic_sparsity
from sweeplab.engine.semi_structured import measure_2_4, nm_fields, unavailable
from sweeplab.engine.task import instantiate
from sweeplab.errors import SweeplabError
from sweeplab.pruning.budget import Target
from sweeplab.pruning.distribution import layer_sparsities
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import apply_masks
from sweeplab.pruning.nm import NMMasks, grouped, ungrouped
from sweeplab.pruning.random import Random
from sweeplab.results import identity, store
from sweeplab.results.row import ResultRow

# conv1 takes 1 input channel (never a multiple of M: excluded); conv2 8 channels (2:4, 4:8,
# 1:4); fc1 128 and fc2 16 features.
CRITERIA = ["global_magnitude", "layer_magnitude", "random", "snip", "taylor", "lamp", "synflow"]


def conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(128, 16), nn.ReLU(), nn.Linear(16, 3),
    )  # fmt: skip


def batches() -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g))]


def nm_masks(strategy: str, pattern: str, extra: list[str] = ()) -> NMMasks:
    overrides = [f"pruning={strategy}", f"pruning.pattern={pattern}", "pruning.sparsity=null"]
    pruner = instantiate(compose([*overrides, *extra]).pruning)
    return pruner.masks(conv_net(), batches(), torch.Generator().manual_seed(0))


def per_group(mask: Tensor, m: int) -> Tensor:
    return grouped(mask, m).sum(1)


@pytest.mark.parametrize("strategy", CRITERIA)
@pytest.mark.parametrize("pattern", ["2:4", "4:8", "1:4"])
def test_every_group_of_m_keeps_exactly_n_for_every_criterion(strategy: str, pattern: str) -> None:
    n, m = map(int, pattern.split(":"))
    masks = nm_masks(strategy, pattern)
    assert masks.excluded == ("0.weight",)  # 1 input channel
    assert masks.fields() == {"nm_pattern": pattern, "nm_excluded": ["0"]}
    assert set(masks) == {"0.weight", "2.weight", "5.weight", "7.weight"}
    for name, mask in masks.items():
        if name in masks.excluded:
            assert bool(mask.all()), name
        else:
            assert torch.equal(per_group(mask, m), torch.full_like(per_group(mask, m), n)), name


def test_groups_run_along_the_input_dimension_as_apex_asp_permutes_convs() -> None:
    # Conv (out, in, kh, kw): a group is m consecutive input channels at one (out, kh, kw).
    w = torch.arange(2 * 8 * 3 * 3).reshape(2, 8, 3, 3)
    g = grouped(w, 4)
    assert torch.equal(g[0], w[0, 0:4, 0, 0]) and torch.equal(g[1], w[0, 4:8, 0, 0])
    assert torch.equal(g[2], w[0, 0:4, 0, 1])
    assert torch.equal(ungrouped(g, w.shape), w)
    lin = torch.arange(3 * 8).reshape(3, 8)
    assert torch.equal(grouped(lin, 4)[1], lin[0, 4:8])


def asp_create_mask(tensor: Tensor, m: int, n: int) -> Tensor:
    """apex sparse_masklib.create_mask with mn_1d_best (its m4n2_1d is m=4, n=2), on the CPU."""

    def mn_1d_best(matrix: Tensor) -> Tensor:
        base = torch.zeros(m)
        base[:n] = 1
        patterns = torch.tensor(list(set(permutations(base.tolist()))))
        mask = torch.ones(matrix.shape, dtype=torch.int32).view(-1, m)
        mat = matrix.view(-1, m)  # shapes here are multiples of m: no zero fill needed
        pmax = torch.argmax(torch.matmul(mat.abs(), patterns.t()), dim=1)
        mask[:] = patterns[pmax[:]]
        return mask.view(matrix.shape)

    shape = tensor.shape
    t = tensor.float().contiguous()
    if len(shape) == 2:
        return mn_1d_best(t.view(shape[0], shape[1])).view(shape).float()
    t = t.permute(2, 3, 0, 1).contiguous().view(shape[2] * shape[3] * shape[0], shape[1])
    mask = mn_1d_best(t).view(shape[2], shape[3], shape[0], shape[1]).permute(2, 3, 0, 1)
    return mask.contiguous().view(shape).float()


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8"])
def test_magnitude_masks_equal_apex_asp_entry_by_entry(pattern: str) -> None:
    n, m = map(int, pattern.split(":"))
    model = conv_net(seed=3)
    masks = Magnitude(None, pattern=pattern).masks(model, [], torch.Generator())
    weights = dict(model.named_parameters())
    compared = 0
    for name, mask in masks.items():
        if name in masks.excluded:
            continue
        assert torch.equal(mask, asp_create_mask(weights[name].detach(), m, n)), name
        compared += 1
    assert compared == 3


def test_excluded_and_configured_layers() -> None:
    from sweeplab.models.lenet import LeNet5

    masks = Magnitude(None, pattern="4:8").masks(LeNet5((1, 28, 28), 10), [], torch.Generator())
    # 1, 20 and 500 inputs are no multiple of 8; fc1's 800 is.
    assert masks.fields()["nm_excluded"] == ["conv1", "conv2", "fc2"]
    skip = Magnitude(None, pattern="2:4", exclude=["7"]).masks(conv_net(), [], torch.Generator())
    assert "7.weight" not in skip and skip.excluded == ("0.weight",)
    with pytest.raises(SweeplabError, match=r"no prunable layer of model Sequential has an input"):
        Magnitude(None, pattern="1:256").check(conv_net(), torch.zeros(2, 1, 8, 8))


@pytest.mark.parametrize("criterion", [Magnitude, Random])
def test_iterative_rounds_tighten_the_pattern_and_keep_what_earlier_rounds_pruned(
    criterion: type,
) -> None:
    # Random scores change every round: a weight pruned earlier must stay pruned anyway.
    pruner, generator = criterion(None, pattern="1:4"), torch.Generator().manual_seed(0)
    model, masks, applied = conv_net(), None, []
    for target in Target.geometric(pruner.sparsity, 3):  # 0.37, 0.60, 0.75
        new = pruner.masks(model, [], generator, target=target, existing=masks)
        applied.append(str(new.pattern))
        for name, mask in new.items():
            if masks is not None:
                assert bool((mask <= masks[name]).all()), name
            if name not in new.excluded:
                assert bool((per_group(mask, 4) == new.pattern.n).all()), name
        masks = new
    assert applied == ["3:4", "2:4", "1:4"]


def test_gradual_updates_follow_the_cubic_curve_with_patterns_from_4_4_to_2_4() -> None:
    pruner = Magnitude(None, pattern="2:4")
    model, masks, kept = conv_net(), None, []
    for step in range(0, 101, 10):
        target = Target(cubic_sparsity(step, 0.5, 0.0, 0, 10, 10))
        masks = pruner.masks(model, [], torch.Generator(), target=target, existing=masks)
        kept.append(masks.pattern.n)
        assert bool((per_group(masks["5.weight"], 4) == masks.pattern.n).all())
    assert kept[0] == 4 and kept[-1] == 2 and kept == sorted(kept, reverse=True)
    assert 3 in kept


def test_nm_size_is_values_plus_index_bits_per_kept_value() -> None:
    assert costs.nm_bytes(128, 2, 4) == 64 * 4 + 64 * 2 // 8  # 272
    assert costs.nm_bytes(128, 4, 8) == 64 * 4 + math.ceil(64 * 3 / 8)  # 3 bits for 8 places
    assert costs.nm_bytes(128, 1, 4) == 32 * 4 + 32 * 2 // 8
    assert costs.nm_bytes(8, 1, 2) == 4 * 4 + 1  # 4 bits round up to a byte
    model = conv_net()
    masks = Magnitude(None, pattern="1:4").masks(model, [], torch.Generator())
    apply_masks(model, masks)
    plain = plain_copy(model)
    layers = masks.grouped_layers()
    expected = sum(
        costs.nm_bytes(t.numel(), 1, 4) if k in layers else costs.encode_choice(t).nbytes
        for k, t in costs.shippable(plain).items()
    )
    assert costs.size_nm_bytes(plain, layers, 1, 4) == expected
    # At 1:4 the N:M form is smaller than every unstructured encoding of the same zeros.
    assert expected < costs.size_sparse_bytes(plain)
    fields = nm_fields(plain, masks, (1, 8, 8), latency=False)
    assert fields["size_nm_bytes"] == expected
    assert nm_fields(plain, dict(masks), (1, 8, 8)) == {}  # plain masks: no N:M fields


def test_latency_reasons_and_no_number_without_a_kernel() -> None:
    ok = dict(enabled=True, has_api=True, cuda=True, capability=(9, 0))
    assert unavailable("2:4", **ok) is None
    assert "measure.latency=false" in unavailable("2:4", **{**ok, "enabled": False})
    assert "2:4 only, not 4:8" in unavailable("4:8", **ok)
    assert "has no torch.sparse.to_sparse_semi_structured" in unavailable(
        "2:4", **{**ok, "has_api": False}
    )
    assert unavailable("2:4", **{**ok, "cuda": False, "capability": None}).startswith("no CUDA GPU")
    assert "capability 7.5" in unavailable("2:4", **{**ok, "capability": (7, 5)})
    if not torch.cuda.is_available():
        masks = Magnitude(None, pattern="2:4").masks(conv_net(), [], torch.Generator())
        fields = nm_fields(conv_net(), masks, (1, 8, 8))
        assert fields["nm_latency_ms"] is None and fields["nm_latency_dense_ms"] is None
        assert fields["nm_latency_note"].startswith("no CUDA GPU")


def test_layers_the_kernels_refuse_stay_dense_and_give_no_number() -> None:
    # On the CPU every Linear is refused (the kernels take CUDA tensors only): the path up to
    # the timing runs, names each layer left dense, and reports no figure.
    from torch.sparse import SparseSemiStructuredTensor

    before = SparseSemiStructuredTensor._FORCE_CUTLASS
    masks = Magnitude(None, pattern="2:4").masks(conv_net(), [], torch.Generator())
    out = measure_2_4(conv_net(), masks.grouped_layers(), (1, 8, 8), 5, device="cpu")
    assert out["nm_latency_ms"] is None and out["nm_latency_dense_ms"] is None
    note = out["nm_latency_note"]
    assert note.startswith("no 2:4 Linear layer torch's") and "'2 (conv)'" in note
    assert "'5 (" in note and "'7 (" in note and "'0" not in note  # conv 0 is excluded
    assert before == SparseSemiStructuredTensor._FORCE_CUTLASS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(sparsity=0.9, pattern="2:4"), "pruning.sparsity=0.9 disagrees with pruning.pattern"),
        (dict(pattern="4:2"), "pruning.pattern=4:2 needs 1 <= N < M"),
        (dict(pattern="2-4"), "pruning.pattern='2-4' is not N:M; use e.g. pruning.pattern=2:4"),
        (dict(pattern=124), "quote the pattern in YAML files"),
        (dict(pattern="2:4", threshold=0.1), "remove pruning.threshold"),
        (dict(pattern="2:4", scope="layer", layer_scale={"a": 1}), "remove pruning.layer_scale"),
        (dict(pattern="2:4", distribution="erk"), "remove pruning.distribution=erk"),
    ],
)
def test_bad_pattern_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SweeplabError, match=message.replace("(", r"\(")):
        Magnitude(**{"sparsity": None, **kwargs})
    assert Magnitude(0.5, pattern="2:4").sparsity == Magnitude(None, pattern="2:4").sparsity == 0.5


def refusal_check(tmp_path: Path, cli):
    """A call(overrides, message) that runs `sweeplab run` and asserts test_bad_input's
    contract: exit 2, one stderr line holding message, no row, no dense model."""
    from test_bad_input import assert_no_work, assert_one_line_error

    def call(overrides: list[str], message: str) -> None:
        res = tmp_path / "res"
        proc = cli(["run", *FAST, *overrides, f"paths.results_dir={res}"], cwd=tmp_path)
        assert_one_line_error(proc.returncode, proc.stderr, message)
        assert_no_work(res)

    return call


@pytest.fixture
def refused(tmp_path: Path, cli):
    return refusal_check(tmp_path, cli)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pruning.pattern=2:4"], "pruning.sparsity=0.9 disagrees with pruning.pattern=2:4, "
         "which prunes 0.5 of each eligible layer; set pruning.sparsity=0.5 or "
         "pruning.sparsity=null"),
        (["pruning.pattern=1:256", "pruning.sparsity=null"], "pruning.pattern=1:256: no "
         "prunable layer of model MLP has an input dimension divisible by 256"),
        (["pruning=l1_filter", "+pruning.pattern=2:4"], "pruning.pattern is not a setting of "
         "pruning=l1_filter"),
    ],
)  # fmt: skip
def test_pattern_refusals_exit_2_before_any_work(overrides, message, refused) -> None:
    refused(overrides, message)


def test_iterative_2_4_run_writes_each_rounds_pattern(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    args = ["run", *FAST, "pruning=random", "pruning.pattern=2:4", "pruning.sparsity=null",
            "schedule=iterative", "schedule.rounds=2", f"paths.results_dir={res}"]  # fmt: skip
    proc = cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The run's line (and a W&B run's name) says what 2:4 asks for, not sparsity null.
    assert "strategy=random sparsity_requested=0.5 seed=0" in proc.stdout, proc.stdout
    rows = sorted((json.loads(p.read_text()) for p in rows_in(res)), key=lambda r: r["round"])
    assert [r["metrics"]["nm_pattern"] for r in rows] == ["3:4", "2:4"]
    assert [r["metrics"]["sparsity_achieved"] for r in rows] == [0.25, 0.5]
    assert rows[-1]["sparsity_requested"] == 0.5 and rows[-1]["metrics"]["nm_excluded"] == []
    last = rows[-1]["metrics"]
    assert last["size_nm_bytes"] > 0
    if not torch.cuda.is_available():
        assert last["nm_latency_ms"] is None and last["nm_latency_note"].startswith("no CUDA")


# -- a results folder that mixes the new choices with what was there -------------------------


def budget_row(overrides: list[str], seed: int, acc: float, *, old: bool = False) -> ResultRow:
    """A row as a run writes it, its config composed from `overrides` (old: as rows from
    before pattern and distribution existed, without those keys)."""
    config = OmegaConf.to_container(compose([*overrides, f"seed={seed}"]), resolve=True)
    pruning = config["pruning"]
    if old:
        pruning.pop("pattern"), pruning.pop("distribution")
    pattern = pruning.get("pattern")
    s = 1 - int(pattern[0]) / int(pattern[2]) if pattern else pruning["sparsity"]
    dense, nonzero = 17_226, 17_226 - round(17_024 * s)
    metrics = dict(
        sparsity_achieved=s, params_total=dense, params_prunable=17_024, params_nonzero=nonzero,
        compression=dense / nonzero, acc_dense_test=0.95, acc_pruned_test=acc - 0.05,
        acc_finetuned_test=acc, acc_finetuned_val=acc, granularity="weight",
        size_dense_bytes=4 * dense, size_bytes=4 * nonzero,
        layer_sparsity={"net.1.weight": s, "net.3.weight": s, "net.5.weight": s},
    )  # fmt: skip
    if pruning.get("distribution"):
        shapes = {"net.1.weight": (128, 64), "net.3.weight": (64, 128), "net.5.weight": (10, 64)}
        metrics["layer_sparsity"] = layer_sparsities(pruning["distribution"], shapes, s)
    if pattern:
        metrics.update(nm_pattern=pattern, nm_excluded=[], size_nm_bytes=4 * nonzero,
                       nm_latency_ms=None, nm_latency_dense_ms=None,
                       nm_latency_note="no CUDA GPU")  # fmt: skip
    return ResultRow(
        run_id=identity.run_id(config), dense_id=identity.dense_id(config), experiment="adhoc",
        data="digits", model="mlp", strategy=pruning["name"], scope=pruning["scope"],
        schedule=config["schedule"]["name"], recovery=config["recovery"]["name"], seed=seed,
        sparsity_requested=s, metrics=metrics, config=config,
    )  # fmt: skip


def test_a_mixed_folder_shows_patterns_and_distributions_as_their_own_series(
    tmp_path: Path, cli
) -> None:
    res = tmp_path / "res"
    at_init = ["pruning=snip", "schedule=at_init", "recovery=weight_rewind"]
    rows = [
        budget_row(["pruning.sparsity=0.5"], 0, 0.95),
        budget_row(["pruning.sparsity=0.5"], 1, 0.93, old=True),  # same series as seed 0
        budget_row(["pruning=lamp", "pruning.sparsity=0.5"], 0, 0.95),
        budget_row(["pruning.pattern=2:4", "pruning.sparsity=null"], 0, 0.94),
        budget_row(["pruning.pattern=1:4", "pruning.sparsity=null"], 0, 0.9),
        budget_row([*at_init, "pruning.distribution=erk"], 0, 0.6),
        budget_row([*at_init, "pruning.distribution=uniform"], 0, 0.3),
        budget_row(at_init, 0, 0.55),
    ]
    for row in rows:
        store.write_row(res, row)
    table = cli(["table", str(res)], cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    pivot = table.stdout[: table.stdout.index("Pareto table")]  # the first: by requested sparsity
    lines = {x.split("|")[1].strip(): x for x in pivot.splitlines() if x.startswith("| ")}
    assert set(lines) == {
        "strategy", "global_magnitude", "global_magnitude [pattern=1:4]", "lamp", "snip",
        "global_magnitude [pattern=2:4]", "snip [distribution=erk]", "snip [distribution=uniform]",
    }  # fmt: skip
    assert "94.00 ± 12.71 / 89.00 (n=2)" in lines["global_magnitude"]  # seeds 0 and 1 pooled
    assert "94.00 / 89.00" in lines["global_magnitude [pattern=2:4]"]
    assert "60.00 / 55.00" in lines["snip [distribution=erk]"]
    points = cli(["table", str(res), "--view", "points"], cwd=tmp_path)
    assert "| global_magnitude [pattern=1:4] |     0.75 |" in points.stdout
    report = cli(["report", str(res), "-o", str(tmp_path / "r.html"), "--no-plots"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "snip [distribution=erk]" in html and "global_magnitude [pattern=2:4]" in html
    erk = next(r for r in rows if r.config["pruning"].get("distribution") == "erk")
    # The report's per-layer view holds the ERK run's layer sparsities.
    assert json.dumps(erk.metrics["layer_sparsity"], separators=(",", ":")) in html
