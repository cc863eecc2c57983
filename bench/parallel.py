"""Parallel sweeps: a 12-run digits sweep, serial vs `hydra/launcher=joblib` with n_jobs workers.

Both sides run the same `sweeplab run -m ...` command in a fresh results dir (so each trains
its two dense models), timed end to end: process start, imports, Hydra, every run. The sides
alternate so machine noise hits both alike. Prints every time, the median throughput ratio
(serial seconds / parallel seconds), checks that both sides wrote bitwise-identical metrics,
and exits 1 when the ratio is below --min-ratio.

    python bench/parallel.py [--repeats 3] [--n-jobs 2] [--min-ratio 1.5] [--epochs 10 5]
                             [--schedule oneshot|iterative]

Each side pays a fixed start-up once before its first run: interpreter, Hydra, and the torch +
Lightning import (in the process for serial, in every worker at once for joblib). The bench
times it (the first `run` line) and prints the best ratio any launcher could reach with it,
(F + W) / (F + W / n_jobs), W being the serial sweep's time after its first run. A digits run
of the default recipe is ~0.3 s, so that bound sits near 1.35x; `--schedule iterative` (5
prune-finetune rounds per run, Han et al.'s workflow) gives runs the length of real ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The DESIGN's researcher sweep at digits scale: 2 strategies x 3 sparsities x 2 seeds = 12 runs,
# two dense models, default epochs (train 10, finetune 5).
SWEEP = [
    "pruning=global_magnitude,random",
    "pruning.sparsity=0.5,0.9,0.98",
    "seed=0,1",
]
METRICS = ("acc_dense_test", "acc_pruned_test", "acc_finetuned_test", "params_nonzero")


def sweep(results: Path, launcher: list[str], recipe: list[str]) -> tuple[float, float]:
    """Run the sweep once into `results`; returns (wall seconds, seconds to the first run).

    The second is the fixed start-up: process start, Hydra, torch + Lightning imports (a run
    prints its `run` line once they are done), and for joblib the workers' start.
    """
    cmd = [sys.executable, "-u", "-m", "sweeplab", "run", "-m", *launcher, *SWEEP, *recipe]
    start, first = time.perf_counter(), None
    with subprocess.Popen(
        [*cmd, f"paths.results_dir={results}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        out = []
        for line in proc.stdout:
            if first is None and line.startswith("run "):
                first = time.perf_counter() - start
            out.append(line)
        err = proc.stderr.read()
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or first is None or not any(o.startswith("sweep: 12 ok") for o in out):
        sys.exit(f"bench: sweep failed ({' '.join(launcher) or 'serial'}):\n{err[-3000:]}")
    return seconds, first


def metrics(results: Path) -> dict[str, tuple]:
    rows = (json.loads(p.read_text()) for p in (results / "runs").glob("*.json"))
    return {r["run_id"]: tuple(r[k] for k in METRICS) for r in rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--min-ratio", type=float, default=1.5)
    p.add_argument("--epochs", type=int, nargs=2, default=[10, 5], metavar=("TRAIN", "FINETUNE"))
    p.add_argument("--schedule", default="oneshot", help="oneshot | iterative | gradual")
    args = p.parse_args()
    recipe = [
        f"train.epochs={args.epochs[0]}",
        f"finetune.epochs={args.epochs[1]}",
        f"schedule={args.schedule}",
    ]
    parallel = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"]

    ratios, bounds = [], []
    with tempfile.TemporaryDirectory(prefix="sweeplab-bench-") as tmp:
        for i in range(args.repeats):
            serial_dir, parallel_dir = Path(tmp, f"serial{i}"), Path(tmp, f"parallel{i}")
            serial_s, serial_f = sweep(serial_dir, [], recipe)
            parallel_s, parallel_f = sweep(parallel_dir, parallel, recipe)
            ratios.append(serial_s / parallel_s)
            work = serial_s - serial_f
            bounds.append(serial_s / (serial_f + work / args.n_jobs))
            print(
                f"repeat {i + 1}: serial {serial_s:.1f} s ({12 / serial_s:.2f} runs/s), "
                f"joblib n_jobs={args.n_jobs} {parallel_s:.1f} s ({12 / parallel_s:.2f} runs/s), "
                f"ratio {ratios[-1]:.2f}x; start-up before the first run: serial "
                f"{serial_f:.1f} s, joblib {parallel_f:.1f} s; bound {bounds[-1]:.2f}x",
                flush=True,
            )
            if metrics(serial_dir) != metrics(parallel_dir):
                print("bench: serial and parallel metrics differ", file=sys.stderr)
                return 1
    ratio = statistics.median(ratios)
    print(
        f"median throughput ratio joblib/serial: {ratio:.2f}x over {args.repeats} repeat(s), "
        f"{' '.join(recipe)} (target >= {args.min_ratio}x; bound from the serial start-up "
        f"{statistics.median(bounds):.2f}x); metrics bitwise identical"
    )
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
