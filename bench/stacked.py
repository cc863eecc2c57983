"""Stacked sweeps (hydra/launcher=stacked) against the default launcher, in the same run.

1. demo: `sweeplab run -m experiment=demo` (15 digits runs), a cold process per side, each in a
   fresh results dir, sides alternating; ratio of wall times (target >= 3x) and of the recovery
   phase (the rows' finetune seconds summed; target >= 8x).
2. mnist: 12 LeNet-300-100 runs on MNIST (2 strategies x 3 sparsities x 2 seeds), 5 finetune
   epochs, dense models trained once beforehand into a shared cache; ratio of the finetune
   phase (target >= 1.5x) and of the whole sweep. Needs ../shared/datasets/mnist.
3. gpu: only where CUDA is available: 16 ResNet-20 variants on CIFAR-shaped data, per-variant
   training throughput stacked vs one at a time (target >= 5x).

Every pair also compares the rows: same run ids, accuracies within 0.1 points (max and mean
difference printed). Medians over --repeats; exits 1 when a median misses its target.

    python bench/stacked.py [--repeats 3] [--parts demo mnist gpu] [--mnist DIR] [--threads 1]
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

REPO = Path(__file__).resolve().parent.parent
MNIST = REPO.parent / "shared" / "datasets" / "mnist"
STACKED = ["hydra/launcher=stacked"]
MNIST_SWEEP = [
    "data=mnist", "model=lenet300", "pruning=global_magnitude,random",
    "pruning.sparsity=0.5,0.9,0.98", "seed=0,1", "train.epochs=1", "measure.latency=false",
]  # fmt: skip


def sweep(args: list[str], results: Path, runs: int) -> float:
    """Run `sweeplab run -m ARGS` in a fresh process; its wall seconds."""
    cmd = [sys.executable, "-m", "sweeplab", "run", "-m", *args, f"paths.results_dir={results}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or f"sweep: {runs} ok" not in done.stdout:
        sys.exit(f"bench: sweep failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    return seconds


def rows(results: Path) -> dict[str, dict]:
    found = (json.loads(p.read_text()) for p in (results / "runs").glob("*.json"))
    return {r["run_id"]: r for r in found}


def phase_seconds(results: Path, phase: str) -> float:
    return sum(r["seconds"].get(phase, 0.0) for r in rows(results).values())


def differences(a: Path, b: Path) -> list[float]:
    """|acc_finetuned_test| differences in points, run by run; the run ids must match."""
    ra, rb = rows(a), rows(b)
    if set(ra) != set(rb):
        sys.exit(f"bench: the two sides wrote different run ids: {sorted(set(ra) ^ set(rb))}")
    return [
        100 * abs(ra[k]["metrics"]["acc_finetuned_test"] - rb[k]["metrics"]["acc_finetuned_test"])
        for k in ra
    ]


def pair(name: str, args: list[str], runs: int, tmp: Path, repeats: int) -> dict[str, list]:
    """Both launchers, alternating, `repeats` times; wall and finetune ratios, differences."""
    out: dict[str, list] = {"wall": [], "finetune": [], "diff": [], "bound": []}
    for i in range(repeats):
        # Alternate which side goes first: a warming or cooling machine hits both alike.
        order = [("plain", []), ("stacked", STACKED)]
        if i % 2:
            order.reverse()
        wall, fine, measure, dirs = {}, {}, {}, {}
        for side, extra in order:
            dirs[side] = tmp / f"{name}-{side}{i}"
            wall[side] = sweep([*args, *extra], dirs[side], runs)
            fine[side] = phase_seconds(dirs[side], "finetune")
            measure[side] = phase_seconds(dirs[side], "measure")
        diffs = differences(dirs["plain"], dirs["stacked"])
        out["wall"].append(wall["plain"] / wall["stacked"])
        out["finetune"].append(fine["plain"] / fine["stacked"])
        out["diff"].extend(diffs)
        # What stacking cannot shrink: the default side's time outside its recovery phase
        # (start-up and imports, dense training, measuring, per-job Hydra work).
        out["bound"].append(wall["plain"] / max(wall["plain"] - fine["plain"], 1e-9))
        print(
            f"{name} repeat {i + 1}: default {wall['plain']:.1f} s, stacked {wall['stacked']:.1f}"
            f" s ({out['wall'][-1]:.2f}x); finetune phase {fine['plain']:.2f} s vs "
            f"{fine['stacked']:.2f} s ({out['finetune'][-1]:.1f}x); accuracy differences max "
            f"{max(diffs):.3f}, mean {statistics.mean(diffs):.3f} points over {len(diffs)} runs;"
            f" measuring (latency, costs) {measure['plain']:.1f} s vs {measure['stacked']:.1f} s;"
            f" bound with a free recovery phase {out['bound'][-1]:.2f}x",
            flush=True,
        )
    return out


def check(label: str, values: list[float], target: float) -> bool:
    median = statistics.median(values)
    ok = median >= target
    print(f"  {label}: median {median:.2f}x (target >= {target}x) {'PASS' if ok else 'FAIL'}")
    return ok


def gpu(repeats: int) -> list[float]:
    """16 ResNet-20s on CIFAR-shaped batches: stacked vs one at a time, per-variant steps/s."""
    import torch
    import torch.nn.functional as F

    from sweeplab.engine.stacked_model import StackedModel
    from sweeplab.models.resnet_cifar import resnet20

    k, steps, device = 16, 30, torch.device("cuda")
    models = [resnet20(num_classes=10).to(device) for _ in range(k)]
    x = torch.randn(128, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (128,), device=device)

    def one_at_a_time() -> float:
        opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]
        torch.cuda.synchronize()
        start = time.perf_counter()
        for m, opt in zip(models, opts, strict=True):
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(m(x), y).backward()
                opt.step()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    stacked = StackedModel(models)
    targets = y.expand(k, -1).flatten()

    def together() -> float:
        opt = torch.optim.SGD(stacked.parameters(), lr=0.01, momentum=0.9)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            logits = stacked(x, shared=True).flatten(0, 1)
            F.cross_entropy(logits, targets, reduction="none").view(k, -1).mean(1).sum().backward()
            opt.step()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    one_at_a_time(), together()  # warm-up: kernels, allocator
    ratios = []
    for i in range(repeats):
        a, b = one_at_a_time(), together()
        ratios.append(a / b)
        print(f"gpu repeat {i + 1}: one at a time {a:.2f} s, stacked {b:.2f} s ({a / b:.2f}x)")
    return ratios


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parts", nargs="+", default=["demo", "mnist", "gpu"])
    p.add_argument("--mnist", type=Path, default=MNIST)
    # Torch threads per sweep in the mnist part: on a machine shared with other jobs, 2-thread
    # runs mostly measure OpenMP threads waiting for descheduled peers (one run took 90 s per
    # LeNet-300-100 epoch beside a 1-thread job); 0 keeps torch's default.
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="sweeplab-stacked-") as name:
        tmp = Path(name)
        if "demo" in args.parts:
            demo = pair("demo", ["experiment=demo"], 15, tmp, args.repeats)
            print("demo sweep, 15 runs, end to end:")
            ok &= check("whole sweep", demo["wall"], 3.0)
            print(f"  (bound if recovery took no time: {statistics.median(demo['bound']):.2f}x)")
            ok &= check("recovery phase", demo["finetune"], 8.0)
        if "mnist" in args.parts and not (args.mnist / "train-images-idx3-ubyte.gz").exists():
            print(f"mnist: skipped, no MNIST at {args.mnist}")
        elif "mnist" in args.parts:
            cache = tmp / "mnist-cache"  # dense models trained once, read by every sweep
            base = [*MNIST_SWEEP, f"data.root={args.mnist}", f"paths.cache_dir={cache}"]
            base += [f"trainer.threads={args.threads}"] if args.threads else []
            sweep([*base, "finetune.epochs=0"], tmp / "mnist-warm", 12)  # dense models only
            mnist = pair("mnist", [*base, "finetune.epochs=5"], 12, tmp, args.repeats)
            print("12 LeNet-300-100 runs on MNIST, 5 finetune epochs:")
            ok &= check("finetune phase", mnist["finetune"], 1.5)
            print(f"  whole sweep (dense cached): median {statistics.median(mnist['wall']):.2f}x")
    if "gpu" in args.parts:
        import torch

        if torch.cuda.is_available():
            print("16 ResNet-20 variants, CIFAR-shaped batches:")
            ok &= check("per-variant throughput", gpu(args.repeats), 5.0)
        else:
            print("gpu: no CUDA GPU here; not measured")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
