"""A results folder that mixes recipes, as issue 13 describes it: the demo sweep, an MNIST
sweep, one iterative run and one weight-rewind run. Configs are composed from conf/ (every key a
real run stores, `_target_` and `name` included); metrics are made up but plausible."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from conftest import compose
from sweeplab.results import identity, store
from sweeplab.results.row import ResultRow

DEMO = ["experiment=demo", "train.epochs=10", "finetune.epochs=3"]
MNIST = ["data=mnist", "data.root=/data/mnist", "train.epochs=1", "finetune.epochs=1"]
DEMO_STRATEGIES = ("random", "layer_magnitude", "global_magnitude")
DEMO_SPARSITIES = (0.5, 0.8, 0.9, 0.95)
DEMO_SEEDS = (0, 1, 2)


@cache
def _config(overrides: tuple[str, ...]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(compose(list(overrides)), resolve=True)
    assert isinstance(config, dict)
    return {k: v for k, v in config.items() if k != "hydra"}


def _row(overrides: list[str], experiment: str, sparsity: float, seed: int,
         round_: int | None = None, rounds: int = 1) -> ResultRow:  # fmt: skip
    """One row of a run composed from overrides; round_ of rounds for iterative schedules."""
    base = _config(tuple(overrides))
    config = {**base, "seed": seed, "pruning": {**base["pruning"], "sparsity": sparsity}}
    requested = sparsity if round_ is None else 1 - (1 - sparsity) ** (round_ / rounds)
    strategy, data = config["pruning"]["name"], config["data"]["name"]
    # Accuracy falls with sparsity, faster for worse criteria, never below chance (0.1).
    hard = {"random": 1.6, "layer_magnitude": 0.45}.get(strategy, 0.18)
    dense_acc = (0.975 if data == "digits" else 0.962) - 0.004 * seed
    wobble = 0.015 * ((seed + round(100 * requested)) % 3 - 1)  # seed-to-seed spread
    acc = max(0.1, dense_acc * (1 - min(0.9, hard * requested**5)) + wobble)
    pruned = max(0.1, acc - (2.5 if strategy == "random" else 0.5) * requested**3 / 2)
    total, prunable = (17_226, 17_024) if data == "digits" else (109_386, 109_184)
    nonzero = total - round(prunable * requested)
    metrics = dict(
        sparsity_achieved=requested, params_total=total, params_prunable=prunable,
        params_nonzero=nonzero, compression=total / nonzero, granularity="weight",
        acc_dense_test=dense_acc, acc_dense_val=dense_acc - 0.01,
        acc_pruned_test=pruned, acc_finetuned_test=acc,
        acc_finetuned_val=acc - 0.01, flops_dense=float(prunable),
        flops=float(prunable - round(prunable * requested)),
        speedup_theoretical=1 / (1 - requested), latency_b1_dense_ms=0.045,
        latency_b1_ms=0.044 + 0.001 * seed, latency_b64_dense_ms=0.085, latency_b64_ms=0.084,
        speedup_measured=0.085 / 0.084, size_dense_bytes=4 * total, size_bytes=5 * nonzero,
        layer_sparsity={"net.1.weight": requested * 0.98, "net.3.weight": requested,
                        "net.5.weight": requested * 0.6},
    )  # fmt: skip
    rid = identity.run_id(config)
    return ResultRow(
        run_id=rid if round_ in (None, rounds) else f"{rid}-r{round_}",
        dense_id=identity.dense_id(config), experiment=experiment, data=data,
        model=config["model"]["name"], strategy=strategy, scope=config["pruning"]["scope"],
        schedule=config["schedule"]["name"], recovery=config["recovery"]["name"], seed=seed,
        sparsity_requested=requested, round=round_, metrics=metrics, config=config,
    )  # fmt: skip


def write_issue_folder(results: Path) -> list[ResultRow]:
    """Demo (3 strategies x 4 sparsities x 3 seeds on digits), MNIST (2 strategies x 2
    sparsities), one iterative global_magnitude run (3 rounds, finetune.epochs=1) and one
    weight-rewind run, all in one folder; returns the rows written."""
    rows = [
        _row([*DEMO, f"pruning={p}"], "demo", s, seed)
        for p in DEMO_STRATEGIES
        for s in DEMO_SPARSITIES
        for seed in DEMO_SEEDS
    ]
    rows += [_row([*MNIST, f"pruning={p}"], "adhoc", s, 0)
             for p in ("global_magnitude", "random") for s in (0.9, 0.98)]  # fmt: skip
    iterative = ["schedule=iterative", "schedule.rounds=3", "finetune.epochs=1"]
    rows += [_row(iterative, "adhoc", 0.9, 0, r, 3) for r in (1, 2, 3)]
    rows.append(_row(["recovery=weight_rewind"], "adhoc", 0.9, 0))
    for row in rows:
        store.write_row(results, row)
    return rows
