"""Does removing channels buy real time? l1_filter at 50% on CIFAR VGG-16, CPU batch 64.

Theoretical speedup = dense MACs / pruned MACs (costs.macs). Measured speedup = dense /
pruned median latency of a batch of 64 under torch.inference_mode (costs.latency_ms), taken
in interleaved rounds so load on the machine hits both alike; the figure is the median over
rounds. Prints both and measured / theoretical; exits 1 below --min-ratio (the issue's 0.7).
Weights are random: latency does not depend on their values. Timing uses 1 thread by
default: on a shared, oversubscribed machine several threads mostly measure waiting for
descheduled peers (and hurt the smaller model more); --threads 0 keeps torch's default.

    python bench/structured_latency.py [--rounds 5] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from sweeplab.engine import costs
from sweeplab.models.vgg import VGG
from sweeplab.pruning.structured.criteria import L1Filter

CIFAR = (3, 32, 32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=0.5, help="channel fraction removed")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved dense/pruned rounds")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per figure")
    parser.add_argument("--threads", type=int, default=1, help="timing threads; 0: torch's")
    parser.add_argument("--min-ratio", type=float, default=0.7)
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.manual_seed(0)
    dense = VGG(CIFAR, 10, 16).eval()
    pruned = L1Filter(args.ratio).prune(dense, torch.randn(1, *CIFAR), [], torch.Generator())
    pruned.eval()
    macs_dense, macs_pruned = costs.macs(dense, CIFAR), costs.macs(pruned, CIFAR)
    theoretical = costs.speedup(macs_dense, macs_pruned)
    print(f"VGG-16 l1_filter ratio {args.ratio}: params {_params(dense):,} -> {_params(pruned):,}")
    print(f"MACs per example: {macs_dense / 1e6:.1f}M -> {macs_pruned / 1e6:.1f}M")
    print(f"batch {args.batch}, {threads} threads, torch {torch.__version__}")
    speedups = []
    for r in range(args.rounds):
        t_dense = costs.latency_ms(dense, CIFAR, args.batch, args.repeats, threads=threads)
        t_pruned = costs.latency_ms(pruned, CIFAR, args.batch, args.repeats, threads=threads)
        speedups.append(t_dense / t_pruned)
        print(f"round {r}: dense {t_dense:.1f} ms, pruned {t_pruned:.1f} ms, x{speedups[-1]:.2f}")
    measured = statistics.median(speedups)
    ratio = measured / theoretical
    print(f"theoretical speedup (MACs): {theoretical:.2f}x")
    print(f"measured speedup (median latency, batch {args.batch}): {measured:.2f}x")
    print(f"measured / theoretical: {ratio:.2f} (target >= {args.min_ratio})")
    return 0 if ratio >= args.min_ratio else 1


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    sys.exit(main())
