"""Every experiments/*.yaml composes, and its `paper:` block (if any) is one reproduce accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from conftest import REPO
from sweeplab.configs import CONF, check_choices
from sweeplab.engine.task import instantiate
from sweeplab.reproduce.rules import expression_names
from sweeplab.reproduce.schema import TIERS, check_paper

EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("config", overrides=overrides, return_hydra_config=hydra)


def first_sweep_point(params: dict[str, Any]) -> list[str]:
    """One override per sweeper param: the first value of each list or range (intervals: none)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    texts = [f"{key}={value}" for key, value in params.items()]
    point = []
    for text, o in zip(texts, OverridesParser.create().parse_overrides(texts), strict=True):
        if not o.is_sweep_override():
            point.append(text)
        elif o.is_choice_sweep() or o.is_range_sweep():
            point.append(f"{o.key_or_group}={next(o.sweep_string_iterator())}")
    return point


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_composes_and_its_paper_block_validates(path: Path) -> None:
    check_experiment(path)


def check_experiment(path: Path, overrides: tuple[str, ...] = ()) -> None:
    """Compose experiment `path.stem`, one point of its sweep, and validate its paper block.

    Args:
        path: the experiment file.
        overrides: more overrides, e.g. a hydra.searchpath that reaches path.
    """
    name = path.stem
    assert path.read_text().startswith("# @package _global_"), f"{path} needs the package line"
    cfg = compose([f"experiment={name}", *overrides], hydra=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.get("params") or {}, resolve=False)
    # Group choices of the sweep (pruning: random,layer_magnitude) name existing files...
    check_choices([*overrides, *(f"{k}={v}" for k, v in params.items())])
    # ...and one point of the sweep composes (catches misspelled keys like pruning.sparsty)
    # and builds its strategy, schedule and recovery (their constructors check the values).
    point = compose([f"experiment={name}", *overrides, *first_sweep_point(params)])
    for key in ("pruning", "schedule", "recovery"):
        assert instantiate(point[key]) is not None, key

    raw = yaml.safe_load(path.read_text()) or {}
    if "paper" not in raw:
        return
    paper = check_paper(OmegaConf.to_container(cfg.paper, resolve=True), f"{path.name}: paper")
    assert paper.tier in TIERS and paper.minutes > 0 and paper.cells
    for cell in paper.cells:
        used = expression_names(cell.ours) | expression_names(cell.rule)
        assert used <= set(paper.values), f"{cell.label}: {used - set(paper.values)} undefined"
    for smoke in paper.smoke:
        assert "=" in smoke, f"{path.name}: smoke entry {smoke!r} is not an override"


@pytest.mark.parametrize(
    ("name", "flops_cut", "params_cut"),
    [("li2017_vgg16", 34.2, 64.0), ("li2017_resnet56", 27.6, 13.7)],
)
def test_li2017_configs_remove_what_the_paper_removed(
    name: str, flops_cut: float, params_cut: float
) -> None:
    """The GPU-tier configs give the paper's architectures (Table 1): checked here, on CPU."""
    import torch

    from sweeplab.engine.costs import macs

    cfg = compose([f"experiment={name}"])
    model = instantiate(cfg.model, input_shape=[3, 32, 32], num_classes=10).eval()
    pruner = instantiate(cfg.pruning)
    x = torch.randn(2, 3, 32, 32)
    pruner.check(model, x)
    small = pruner.prune(model, x, [(x, torch.tensor([0, 1]))], torch.Generator().manual_seed(0))

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    got_flops = 100 * (1 - macs(small, [3, 32, 32]) / macs(model, [3, 32, 32]))
    got_params = 100 * (1 - count(small) / count(model))
    assert abs(got_flops - flops_cut) <= 1.0, got_flops
    assert abs(got_params - params_cut) <= 1.0, got_params


def test_every_cpu_tier_experiment_has_its_table_committed() -> None:
    """results/tables/NAME.md, as `sweeplab reproduce NAME` wrote it (the README links them)."""
    blocks = {p: (yaml.safe_load(p.read_text()) or {}).get("paper") or {} for p in EXPERIMENTS}
    cpu = [p for p, block in blocks.items() if block.get("tier") == "cpu"]
    assert len(cpu) >= 7
    for path in cpu:
        table = REPO / "results" / "tables" / f"{path.stem}.md"
        assert table.is_file(), f"run `sweeplab reproduce {path.stem}` and commit {table}"
        assert table.read_text().startswith(f"## {path.stem}\n"), table
        assert "cells pass" in table.read_text(), table
