"""Training throughput: sweeplab's Lightning path vs a hand-written PyTorch loop, same process.

One epoch of LeNet-300-100 on MNIST at batch 128 (SGD + momentum, cosine lr per step), each
side repeated and interleaved so machine noise hits both alike. Prints every time, the median
ratio sweeplab / hand loop, and exits 1 when that ratio exceeds --max-ratio.

    python bench/throughput.py [--root ../shared/datasets/mnist] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sweeplab.data.base import Splits
from sweeplab.data.idx import load_idx
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.train import fit
from sweeplab.models.lenet import LeNet300

ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "mnist"


def hand_loop(splits: Splits, cfg: TrainConfig, seed: int) -> float:
    """The reference: the plainest correct PyTorch epoch over index batches."""
    torch.manual_seed(seed)
    model = LeNet300((1, 28, 28), 10)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    x, y = splits.train_x, splits.train_y
    steps = -(-len(x) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    start = time.perf_counter()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), cfg.batch_size):
        idx = perm[i : i + cfg.batch_size]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        sched.step()
    return time.perf_counter() - start


def through_sweeplab(splits: Splits, cfg: TrainConfig, seed: int) -> float:
    """What a sweeplab run pays for the same epoch, Trainer construction included."""
    torch.manual_seed(seed)
    model = LeNet300((1, 28, 28), 10)
    start = time.perf_counter()
    fit(model, splits, cfg, seed=seed, phase="dense", validate=False)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=str(ROOT), help="folder with the MNIST IDX files")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-ratio", type=float, default=1.15)
    args = p.parse_args()

    splits = load_idx("mnist", args.root, download=False)
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=128, momentum=0.9, weight_decay=5e-4)
    through_sweeplab(splits, cfg, seed=99)  # warm-up: first-call costs of both code paths
    hand_loop(splits, cfg, seed=99)
    hand, ours = [], []
    for r in range(args.repeats):
        hand.append(hand_loop(splits, cfg, seed=r))
        ours.append(through_sweeplab(splits, cfg, seed=r))
        print(f"repeat {r}: hand loop {hand[-1]:.3f} s, sweeplab {ours[-1]:.3f} s, "
              f"ratio {ours[-1] / hand[-1]:.3f}")  # fmt: skip
    ratios = [o / h for o, h in zip(ours, hand, strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"LeNet-300-100, MNIST, batch {cfg.batch_size}, {len(splits.train_x)} images/epoch, "
        f"torch threads {torch.get_num_threads()}, {args.repeats} repeats"
    )
    print(f"median sweeplab / hand-loop time ratio: {ratio:.3f} (limit {args.max_ratio})")
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
