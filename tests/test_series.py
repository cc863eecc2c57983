"""Series labels in a folder that mixes recipes: chosen per (data, model) card, short, distinct,
one line, never a section's `_target_` or `name`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from issue_folder import write_issue_folder
from sweeplab.results.analysis import summarize
from sweeplab.results.rows import load_rows
from sweeplab.results.series import card_labels, labels, short_names, shown_keys

MAX_LABEL = 48  # characters: one legend line beside a 580 px chart


def test_mixed_folder_gives_short_distinct_labels_per_card(tmp_path: Path) -> None:
    write_issue_folder(tmp_path)
    summary = summarize(load_rows(tmp_path))
    pts = summary.points
    by_card = {card: sorted(set(sub["series"])) for card, sub in pts.groupby("data")}
    assert by_card == {
        "digits": [
            "dense",
            "global_magnitude [iterative, finetune]",
            "global_magnitude [oneshot, finetune]",
            "global_magnitude [oneshot, weight_rewind]",
            "layer_magnitude",
            "random",
        ],
        # Nothing varies within a strategy on MNIST: what varies on digits is not shown here.
        "mnist": ["dense", "global_magnitude", "random"],
    }
    for names in by_card.values():
        assert all(len(n) <= MAX_LABEL and "\n" not in n for n in names)
        assert not any("_target_" in n or ".name" in n or "finetune.epochs" in n for n in names)
    # Seeds pool within a series only: 3 demo seeds, 1 run for each other recipe.
    digits = pts[(pts["data"] == "digits") & (pts["sparsity_requested"] == 0.9)]
    n = dict(zip(digits["series"], digits["n"], strict=True))
    assert n["global_magnitude [oneshot, finetune]"] == 3
    assert n["global_magnitude [oneshot, weight_rewind]"] == 1


def test_labels_use_the_fewest_keys_and_short_key_names() -> None:
    rows = pd.DataFrame({
        "strategy": ["a"] * 4,
        "schedule": ["oneshot", "oneshot", "iterative", "iterative"],
        "schedule.rounds": [None, None, 3, 5],
        "finetune.epochs": [3, 3, 1, 1],
        "train.epochs": [10, 10, 10, 10],
    })  # fmt: skip
    keys = ["schedule", "schedule.rounds", "finetune.epochs"]
    # finetune.epochs follows schedule here: it tells nothing apart, so it is not shown.
    assert shown_keys(rows, keys) == ["schedule", "schedule.rounds"]
    names = short_names(rows.columns)
    assert names["schedule.rounds"] == "rounds" and names["finetune.epochs"] == "finetune.epochs"
    assert labels(rows, rows["strategy"], ["schedule", "schedule.rounds"], names) == [
        "a [oneshot]", "a [oneshot]", "a [iterative, rounds=3]", "a [iterative, rounds=5]"
    ]  # fmt: skip


def test_dense_labels_split_only_where_the_dense_recipe_varies() -> None:
    rows = pd.DataFrame({
        "data": ["digits", "digits", "mnist"], "model": ["mlp"] * 3, "strategy": ["r"] * 3,
        "scope": ["global"] * 3, "schedule": ["oneshot"] * 3, "recovery": ["finetune"] * 3,
        "granularity": ["weight"] * 3, "train.epochs": [5, 10, 1], "finetune.epochs": [1] * 3,
        "seed": [0, 0, 0],
    })  # fmt: skip
    series, dense = card_labels(rows, ["data", "model"])
    assert series == ["r [train.epochs=5]", "r [train.epochs=10]", "r"]
    assert dense == ["dense [train.epochs=5]", "dense [train.epochs=10]", "dense"]


def test_a_config_key_shows_only_where_it_tells_series_apart() -> None:
    """A real mixed folder (demo with finetune.epochs=10, then default runs with 5): only the
    one-shot finetune series differ in finetune.epochs, so only their labels carry it (a
    weight-rewind run does not even use it). Before: every label of the strategy carried it."""
    rows = pd.DataFrame({
        "data": ["digits"] * 5, "model": ["mlp"] * 5, "strategy": ["g"] * 5,
        "schedule": ["iterative", "iterative", "oneshot", "oneshot", "oneshot"],
        "recovery": ["finetune", "weight_rewind", "finetune", "finetune", "weight_rewind"],
        "finetune.epochs": [5, 5, 5, 10, 5], "train.epochs": [10] * 5,
    })  # fmt: skip
    series, _ = card_labels(rows, ["data", "model"])
    assert series == [
        "g [iterative, finetune]",
        "g [iterative, weight_rewind]",
        "g [oneshot, finetune, finetune.epochs=5]",
        "g [oneshot, finetune, finetune.epochs=10]",
        "g [oneshot, weight_rewind]",
    ]


def test_a_key_set_on_some_rows_and_default_on_others_splits_the_series() -> None:
    """A user's model run with +model.width=7 and without (its default): the rows without
    the key were pooled with it (nunique ignored missing values)."""
    rows = pd.DataFrame({
        "data": ["digits"] * 3, "model": ["TinyNet"] * 3, "strategy": ["g"] * 3,
        "model.width": [None, None, 7],
    })  # fmt: skip
    series, _ = card_labels(rows, ["data", "model"])
    assert series == ["g", "g", "g [width=7]"]


def test_trainer_settings_that_change_results_split_series_and_hardware_does_not() -> None:
    rows = pd.DataFrame({
        "data": ["digits"] * 3, "model": ["mlp"] * 3, "strategy": ["g"] * 3,
        "trainer.precision": [None, "bf16-mixed", None], "trainer.threads": [1, 1, 2],
    })  # fmt: skip
    series, dense = card_labels(rows, ["data", "model"])
    assert series == ["g", "g [precision=bf16-mixed]", "g"]
    assert dense == ["dense", "dense [precision=bf16-mixed]", "dense"]
