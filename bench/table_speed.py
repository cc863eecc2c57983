"""`sweeplab table` over 10,000 rows: end-to-end wall time of the real command, per row.

Writes realistic row files (full resolved config, per-layer sparsity, cost metrics) into a
temp results dir, then times `python -m sweeplab table DIR` in a subprocess (interpreter start,
imports, reading, aggregation, printing): once cold (no row index yet: every row file is
parsed and the index written), once after one row changed (incremental), and --repeats times
warm. Prints each wall time, the medians of wall and CPU time (CPU time shows what a loaded
machine hides) and the time per row; exits 1 when the warm median exceeds --limit seconds of
wall time (or the cold run exceeds --cold-limit, when given). The cold run reads 30 MiB in
10,000 files once; how long that takes depends on the disk and the page cache more than on
sweeplab, which is why the index exists.

    python bench/table_speed.py [--rows 10000] [--repeats 5] [--limit 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeplab.results import identity, store
from sweeplab.results.row import ResultRow

DATA_MODELS = [("mnist", "lenet300"), ("mnist", "lenet5"), ("cifar10", "resnet20"),
               ("cifar10", "vgg11")]  # fmt: skip
STRATEGIES = ["global_magnitude", "layer_magnitude", "random", "gradient", "taylor", "snip",
              "grasp", "synflow", "l1_filter", "bn_scale"]  # fmt: skip
SPARSITIES = [0.5, 0.75, 0.8, 0.875, 0.9, 0.9375, 0.95, 0.96875, 0.98, 0.99]
FINETUNE_EPOCHS = [1, 2, 5, 10, 20]
SEEDS = range(5)
LAYERS = [f"layer{i // 3}.{i % 3}.conv{i % 2 + 1}.weight" for i in range(20)]


def make_row(data: str, model: str, strategy: str, s: float, epochs: int, seed: int) -> ResultRow:
    """One plausible row: accuracy falls with sparsity, costs shrink with it."""
    rng = random.Random(hash((data, model, strategy, s, epochs, seed)))
    config = {
        "data": {"_target_": f"sweeplab.data.{data}.load", "name": data, "val_size": 5000},
        "model": {"_target_": f"sweeplab.models.{model}.Net", "name": model},
        "train": {"epochs": 30, "lr": 0.1, "batch_size": 128, "optimizer": "sgd",
                  "momentum": 0.9, "weight_decay": 5e-4, "lr_schedule": "cosine"},
        "finetune": {"epochs": epochs, "lr": 0.01, "batch_size": 128, "optimizer": "sgd",
                     "momentum": 0.9, "weight_decay": 5e-4, "lr_schedule": "cosine"},
        "pruning": {"_target_": "sweeplab.pruning.magnitude.Magnitude", "name": strategy,
                    "scope": "layer" if strategy.startswith("layer") else "global",
                    "sparsity": s},
        "seed": seed,
        "trainer": {"accelerator": "cpu", "devices": 1, "inner_steps": 8, "threads": None},
        "paths": {"results_dir": "results", "cache_dir": "results/cache"},
    }  # fmt: skip
    dense_acc = 0.98 - 0.001 * seed
    acc = dense_acc - s**4 * rng.uniform(0.02, 0.3)
    total = 266_610
    nonzero = int(total * (1 - s)) + 400
    rid = identity.run_id(config)
    metrics = dict(
        sparsity_achieved=s, params_total=total, params_prunable=total - 400,
        params_nonzero=nonzero, compression=total / nonzero, acc_dense_test=dense_acc,
        acc_dense_val=dense_acc, acc_pruned_test=acc - 0.05, acc_pruned_val=acc - 0.05,
        acc_finetuned_test=acc, acc_finetuned_val=acc,
        layer_sparsity={name: min(0.999, s * rng.uniform(0.8, 1.2)) for name in LAYERS},
        flops_dense=2.7e5, flops=2.7e5 * (1 - s) + 500, size_dense_bytes=total * 4,
        size_sparse_bytes=nonzero * 6, size_bytes=nonzero * 6, latency_b1_dense_ms=0.05,
        latency_b1_ms=0.05, latency_b64_dense_ms=0.4, latency_b64_ms=0.4,
        speedup_theoretical=2.7e5 / (2.7e5 * (1 - s) + 500), speedup_measured=1.0,
        dense_source="cache", granularity="weight",
    )  # fmt: skip
    return ResultRow(
        run_id=rid, dense_id=identity.dense_id(config), experiment="bench", status="ok",
        data=data, model=model, strategy=strategy, scope=config["pruning"]["scope"],
        schedule="oneshot", recovery="finetune", seed=seed, sparsity_requested=s,
        metrics=metrics,
        seconds={"data": 0.5, "dense": 0.01, "prune": 0.02, "finetune": 3.1, "measure": 0.2},
        config=config, git_sha="0" * 40, versions={"torch": "2.13.0", "sweeplab": "0.1.0"},
        created_at="2026-01-01T00:00:00+00:00", threads=1,
    )  # fmt: skip


def write_rows(results: Path, n: int) -> int:
    """Write n row files the way store.write_row formats them (without its per-file fsync)."""
    runs = store.runs_dir(results)
    runs.mkdir(parents=True, exist_ok=True)
    count = 0
    for data, model in DATA_MODELS:
        for strategy in STRATEGIES:
            for s in SPARSITIES:
                for epochs in FINETUNE_EPOCHS:
                    for seed in SEEDS:
                        if count == n:
                            return count
                        row = make_row(data, model, strategy, s, epochs, seed)
                        text = json.dumps(row.to_record(), indent=1, sort_keys=True, default=str)
                        store.row_path(results, row.run_id).write_text(text)
                        count += 1
    return count


def time_table(results: Path) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one `sweeplab table` subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sweeplab", "table", str(results)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"sweeplab table failed: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--limit", type=float, default=2.0, help="seconds, warm median (wall)")
    p.add_argument("--cold-limit", type=float, default=None, help="seconds, cold run (wall)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweeplab-table-bench-") as tmp:
        results = Path(tmp) / "results"
        start = time.perf_counter()
        n = write_rows(results, args.rows)
        mb = sum(f.stat().st_size for f in store.runs_dir(results).iterdir()) / 2**20
        print(f"wrote {n} row files ({mb:.1f} MiB) in {time.perf_counter() - start:.1f} s")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall, cpu)")
        cold, cold_cpu = time_table(results)
        print(f"cold  (no index: parses every row, writes it): {cold:.3f} s, cpu {cold_cpu:.3f} s")
        changed = next(store.runs_dir(results).glob("*.json"))
        changed.write_text(changed.read_text().replace('"bench"', '"bench2"'))
        incremental, _ = time_table(results)
        print(f"incremental (1 row rewritten):                 {incremental:.3f} s")
        warm = [time_table(results) for _ in range(args.repeats)]
        median = statistics.median(w for w, _ in warm)
        cpu = statistics.median(c for _, c in warm)
        print("warm  (index valid): " + ", ".join(f"{w:.3f}" for w, _ in warm) + " s")
        print(
            f"median {median:.3f} s (cpu {cpu:.3f} s) for {n} rows = {1e6 * median / n:.1f} us/row"
            f" (cold {1e6 * cold / n:.1f} us/row); limit {args.limit:.2f} s"
        )
    if median > args.limit or (args.cold_limit is not None and cold > args.cold_limit):
        print("FAIL: over the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
