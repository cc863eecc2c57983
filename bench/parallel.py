"""Parallel sweeps: a 12-run digits sweep, serial vs `hydra/launcher=joblib` with n_jobs workers.

Both sides run the same `sweeplab run -m ...` command in a fresh results dir (so each trains
its two dense models), timed end to end: process start, imports, Hydra, every run. The sides
alternate so machine noise hits both alike. Prints every time, the median throughput ratio
(serial seconds / parallel seconds), checks that both sides wrote bitwise-identical metrics,
and exits 1 when the ratio is below --min-ratio.

    python bench/parallel.py [--repeats 3] [--n-jobs 2] [--min-ratio 1.5] [--epochs 10 5]

Each side pays its fixed costs once (interpreter, Hydra, and torch + Lightning imports, about
5 s: in the process for serial, in each worker for joblib), so the ratio grows with the work
per run: `--epochs 10 5` is the default recipe, `--epochs 30 10` the README demo's.
"""

from __future__ import annotations

import argparse
import json
import re
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
    """Run the sweep once into `results`; returns (wall seconds, seconds the sweep reports).

    The second leaves out process start and Hydra's setup (not torch's import, which happens
    in the first run, or in each joblib worker).
    """
    cmd = [sys.executable, "-m", "sweeplab", "run", "-m", *launcher, *SWEEP, *recipe]
    start = time.perf_counter()
    proc = subprocess.run(
        [*cmd, f"paths.results_dir={results}"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or "sweep: 12 ok" not in proc.stdout:
        sys.exit(f"bench: sweep failed ({' '.join(launcher) or 'serial'}):\n{proc.stderr[-3000:]}")
    inside = float(re.search(r"in ([0-9.]+) s$", proc.stdout.strip()).group(1))
    return seconds, inside


def metrics(results: Path) -> dict[str, tuple]:
    rows = (json.loads(p.read_text()) for p in (results / "runs").glob("*.json"))
    return {r["run_id"]: tuple(r[k] for k in METRICS) for r in rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--min-ratio", type=float, default=1.5)
    p.add_argument("--epochs", type=int, nargs=2, default=[10, 5], metavar=("TRAIN", "FINETUNE"))
    args = p.parse_args()
    recipe = [f"train.epochs={args.epochs[0]}", f"finetune.epochs={args.epochs[1]}"]
    parallel = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"]

    ratios = []
    with tempfile.TemporaryDirectory(prefix="sweeplab-bench-") as tmp:
        for i in range(args.repeats):
            serial_dir, parallel_dir = Path(tmp, f"serial{i}"), Path(tmp, f"parallel{i}")
            serial_s, serial_in = sweep(serial_dir, [], recipe)
            parallel_s, parallel_in = sweep(parallel_dir, parallel, recipe)
            ratios.append(serial_s / parallel_s)
            print(
                f"repeat {i + 1}: serial {serial_s:.1f} s ({12 / serial_s:.2f} runs/s), "
                f"joblib n_jobs={args.n_jobs} {parallel_s:.1f} s ({12 / parallel_s:.2f} runs/s), "
                f"ratio {ratios[-1]:.2f}x (inside the sweep: {serial_in:.1f} s vs "
                f"{parallel_in:.1f} s, {serial_in / parallel_in:.2f}x)",
                flush=True,
            )
            if metrics(serial_dir) != metrics(parallel_dir):
                print("bench: serial and parallel metrics differ", file=sys.stderr)
                return 1
    ratio = statistics.median(ratios)
    print(
        f"median throughput ratio joblib/serial: {ratio:.2f}x over {args.repeats} repeat(s), "
        f"{' '.join(recipe)} "
        f"(target >= {args.min_ratio}x); metrics bitwise identical"
    )
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
