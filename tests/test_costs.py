"""Cost metrics: the papers' MAC counts, sparsity-aware MACs, encodings, sizes, latency."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sweeplab.engine import costs
from sweeplab.engine.measure import params_total
from sweeplab.errors import SweeplabError
from sweeplab.models.lenet import LeNet5
from sweeplab.models.mlp import MLP
from sweeplab.models.resnet_cifar import ResNetCifar
from sweeplab.models.vgg import VGG
from sweeplab.pruning.masks import apply_masks, remove_masks
from sweeplab.pruning.structured.criteria import L1Filter
from sweeplab.results.row import ResultRow

CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)
# LeNet-5-Caffe MACs by hand: conv 20x(1x5x5) on 24x24, conv 50x(20x5x5) on 8x8, fc 800x500, 500x10.
LENET5_LAYERS = {"conv1": 288_000, "conv2": 1_600_000, "fc1": 400_000, "fc2": 5_000}


def test_resnet56_macs_and_params() -> None:
    model = ResNetCifar(CIFAR, 10, 56)
    assert costs.macs(model, CIFAR) == pytest.approx(125e6, rel=0.02)  # He et al.; Li et al. 1.25e8
    assert params_total(model) == pytest.approx(0.85e6, rel=0.02)


def test_vgg16_macs_match_li_et_al() -> None:
    assert costs.macs(VGG(CIFAR, 10, 16), CIFAR) == pytest.approx(3.13e8, rel=0.02)  # table 1


def test_per_layer_and_sparse_macs() -> None:
    model = LeNet5(MNIST, 10)
    per_layer = costs.macs_by_layer(model, MNIST)
    assert {k: per_layer[k] for k in LENET5_LAYERS} == LENET5_LAYERS
    assert per_layer[""] == sum(LENET5_LAYERS.values())
    # Keep 1 weight in 4 of fc1 and 1 in 2 of conv2 (masks attached): MACs scale per layer.
    masks = {
        "fc1.weight": (torch.arange(800 * 500) % 4 == 0).float().view(500, 800),
        "conv2.weight": (torch.arange(50 * 20 * 25) % 2 == 0).float().view(50, 20, 5, 5),
    }
    apply_masks(model, masks)
    expected = 288_000 + 1_600_000 / 2 + 400_000 / 4 + 5_000
    assert costs.macs(model, MNIST, sparse=True) == expected
    assert costs.macs(model, MNIST) == sum(LENET5_LAYERS.values())
    remove_masks(model)  # zeros in place count the same
    assert costs.macs(model, MNIST, sparse=True) == expected


def test_structured_model_counts_fewer_macs() -> None:
    dense = VGG(CIFAR, 10, 11)
    pruned = L1Filter(0.5).prune(dense, torch.randn(1, *CIFAR), [], torch.Generator())
    ratio = costs.macs(pruned, CIFAR) / costs.macs(dense, CIFAR)
    assert 0.24 < ratio < 0.27  # both sides of most convs halved: about a quarter


def test_encodings_pick_the_smallest() -> None:
    n = 1000
    dense = torch.ones(n)
    assert costs.encode_choice(dense) == costs.Encoding("dense", 4000)
    half = (torch.arange(n) % 10 < 3).float()  # 300 nonzero
    assert costs.encode_choice(half) == costs.Encoding("bitmask", 125 + 1200)
    few = (torch.arange(n) % 20 == 0).float()  # 50 nonzero, positions fit uint16
    assert costs.encode_choice(few) == costs.Encoding("index", 50 * (2 + 4))
    assert costs.encode_choice(torch.zeros(200)) == costs.Encoding("index", 0)
    assert costs.encode_choice(torch.arange(5)) == costs.Encoding("dense", 40)  # int64 as is
    assert costs.index_bytes(256) == 1 and costs.index_bytes(257) == 2
    assert costs.index_bytes(65_537) == 4


def test_sizes() -> None:
    model = LeNet5(MNIST, 10)
    assert costs.size_dense_bytes(model) == 431_080 * 4
    assert costs.size_sparse_bytes(model) == 431_080 * 4  # nothing to gain
    apply_masks(model, {"fc1.weight": torch.zeros(500, 800)})
    assert costs.size_dense_bytes(model) == 431_080 * 4  # masks are folded, not stored
    formats = {k: e.format for k, e in costs.sparse_encodings(model).items()}
    assert formats["fc1.weight"] == "index" and formats["conv1.weight"] == "dense"
    assert costs.size_sparse_bytes(model) == (431_080 - 400_000) * 4


def test_latency_and_speedup() -> None:
    model = MLP(MNIST, 10, hidden=[64])
    b1 = costs.latency_ms(model, MNIST, batch_size=1, repeats=3, min_sample_ms=1)
    assert b1 > 0
    threads = torch.get_num_threads()
    assert costs.latency_ms(model, MNIST, 4, repeats=1, min_sample_ms=1, threads=1) > 0
    assert torch.get_num_threads() == threads  # restored
    assert costs.speedup(4.0, 2.0) == 2.0
    with pytest.raises(SweeplabError, match="positive costs"):
        costs.speedup(1.0, 0.0)
    with pytest.raises(SweeplabError, match="repeats >= 1"):
        costs.latency_ms(model, MNIST, repeats=0)


def test_cost_fields_are_row_fields() -> None:
    dense = MLP(MNIST, 10, hidden=[64])
    pruned = MLP(MNIST, 10, hidden=[64])
    apply_masks(pruned, {"net.1.weight": (torch.rand(64, 784) < 0.1).float()})
    fields = costs.cost_fields(dense, pruned, MNIST, repeats=2)
    core = {f.name for f in dataclasses.fields(ResultRow)}
    assert not set(fields) & core  # metrics, not core row fields
    assert fields["speedup_theoretical"] > 5 and fields["size_bytes"] < fields["size_dense_bytes"]
    timed = {
        f"latency_b{b}{d}{q}_ms"
        for b in (1, 64)
        for d in ("_dense", "")
        for q in ("", "_q25", "_q75")
    } | {f"speedup_measured{q}" for q in ("", "_q25", "_q75")}
    untimed = {"flops_dense", "flops", "speedup_theoretical"}
    untimed |= {"size_dense_bytes", "size_sparse_bytes", "size_bytes"}
    assert set(fields) == untimed | timed
    assert set(costs.cost_fields(dense, pruned, MNIST, latency=False)) == untimed
