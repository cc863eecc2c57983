"""Run identity: content hashes that ignore paths and nulls, pinned so ids never drift."""

from __future__ import annotations

from omegaconf import OmegaConf

from conftest import compose
from sweeplab.results import identity


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose(overrides), resolve=True)


def test_ids_are_pinned() -> None:
    # If these change, every user's cache and results are orphaned: bump deliberately only.
    assert identity.content_id({"a": 1, "b": [1, 2]}, ["a", "b"]) == "8baa73198470"
    # Bumped once, deliberately, when schedule and recovery joined the run identity.
    assert identity.run_id(resolved([])) == "263a91b32209"
    assert identity.dense_id(resolved([])) == "8358479c6c20"
    assert identity.run_id(resolved(["pruning=random", "pruning.sparsity=0.5"])) == "1ab868445452"


def test_null_keys_and_paths_do_not_change_ids() -> None:
    base = resolved([])
    with_null = resolved(["+pruning.new_option=null", "+train.other=null"])
    moved = resolved(["paths.results_dir=/elsewhere", "logger=wandb", "trainer.threads=1"])
    assert identity.run_id(with_null) == identity.run_id(base)
    assert identity.run_id(moved) == identity.run_id(base)
    assert identity.dense_id(resolved(["data=mnist", "data.root=/a"])) == identity.dense_id(
        resolved(["data=mnist", "data.root=/b"])
    )


def test_everything_that_determines_the_result_changes_the_id() -> None:
    base = resolved([])
    for override in ("seed=1", "pruning.sparsity=0.5", "finetune.lr=0.1", "train.epochs=3"):
        assert identity.run_id(resolved([override])) != identity.run_id(base), override


def test_dense_id_is_shared_by_every_pruning_of_one_dense_model() -> None:
    ids = {
        identity.dense_id(resolved([f"pruning={p}", f"pruning.sparsity={s}", "finetune.epochs=9"]))
        for p in ("random", "layer_magnitude", "global_magnitude")
        for s in (0.5, 0.9)
    }
    assert len(ids) == 1
    assert identity.dense_id(resolved(["train.lr=0.1"])) not in ids


def test_moved_classes_keep_their_ids_and_old_rows_name_todays_classes() -> None:
    """A class's pinned import path is what its id hashes; old rows' targets map back to today's."""
    from sweeplab.results.identity import current_targets, identity_target

    moved = ("sweeplab.engine.schedules.OneShot", "sweeplab.engine.recovery.Finetune",
             "sweeplab.engine.weight_sharing.WeightSharing")  # fmt: skip
    for new in moved:
        old = identity_target(new)
        assert old != new and current_targets({"_target_": old}) == {"_target_": new}
    moved = resolved(["pruning=block_removal", "model=resnet20"])
    assert moved["pruning"]["_target_"] == "sweeplab.pruning.structured.BlockRemoval"
    pinned = {
        **moved,
        "pruning": {**moved["pruning"], "_target_": "sweeplab.pruning.blocks.BlockRemoval"},
    }
    assert identity.run_id(moved) == identity.run_id(pinned)
    assert current_targets(pinned) == moved


def test_trainer_settings_that_change_results_join_both_ids_and_defaults_do_not() -> None:
    base = resolved([])
    same = [
        "trainer.precision=32", "trainer.precision=32-true", "trainer.gradient_clip_algorithm=norm",
        "trainer.gradient_clip_algorithm=value",  # with no clip value it does nothing
        "trainer.accumulate_grad_batches=1", "trainer.deterministic=true",
        "trainer.benchmark=true", "trainer.num_sanity_val_steps=2", "trainer.detect_anomaly=true",
        "trainer.progress=off", "trainer.progress_every=0", "trainer.inner_steps=1",
    ]  # fmt: skip
    for override in same:
        config = resolved([override])
        assert identity.run_id(config) == identity.run_id(base), override
        assert identity.dense_id(config) == identity.dense_id(base), override
    changed = [
        "trainer.precision=bf16-mixed", "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=2", "trainer.max_time=600",
    ]  # fmt: skip
    ids = {identity.run_id(base)}
    for override in changed:
        config = resolved([override])
        assert identity.dense_id(config) != identity.dense_id(base), override
        ids.add(identity.run_id(config))
    assert len(ids) == 1 + len(changed)
    # One setting, two spellings: one id.
    assert identity.run_id(resolved(["trainer.precision=bf16"])) == identity.run_id(
        resolved(["trainer.precision=bf16-mixed"])
    )
    assert identity.run_id(resolved(["trainer.max_time=00:00:10:00"])) == identity.run_id(
        resolved(["trainer.max_time=600"])
    )
    assert identity.run_id(resolved(["trainer.gradient_clip_val=1"])) == identity.run_id(
        resolved(["trainer.gradient_clip_val=1.0"])
    )
    clip = ["trainer.gradient_clip_val=1.0"]
    by_value = resolved([*clip, "trainer.gradient_clip_algorithm=value"])
    assert identity.run_id(by_value) != identity.run_id(resolved(clip))
    # Pinned, like the ids above: bump deliberately only.
    assert identity.run_id(resolved(["trainer.precision=bf16-mixed"])) == "c6949acf90ab"
