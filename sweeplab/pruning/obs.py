"""SparseGPT's layer-wise OBS reconstruction (Frantar & Alistarh 2023) on one weight matrix.

Followed line by line: the authors' code (IST-DASLab/sparsegpt, sparsegpt.py `add_batch` and
`fasterprune`, without quantization and loss bookkeeping): H = (2 / n) sum X X^T over the
calibration rows; dead inputs (H_jj = 0) get H_jj = 1 and zero weights; H += damp * mean(diag
H) * I; the upper Cholesky factor of H^-1; columns in blocks of `blocksize`, inside a block one
column at a time: prune, spread the error (w - q) / [H^-1]_jj over the block's later columns,
then the block's errors over all later columns at once (the lazy batch update). The mask of a
block is chosen when the block starts, from w^2 / [H^-1]_jj^2 of its updated weights
(unstructured); N:M groups are chosen when their first column comes up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class Hessian:
    """H = (2 / n) sum over calibration rows of x x^T, accumulated as the reference's add_batch
    (a running mean over examples: H *= n / (n + b), then += (2 / n) X^T X)."""

    def __init__(self, columns: int, device: torch.device, dtype: torch.dtype) -> None:
        self.H = torch.zeros(columns, columns, device=device, dtype=dtype)
        self.examples = 0

    def add(self, rows: Tensor, examples: int) -> None:
        """Add a chunk: `rows` (r, columns) of input features from `examples` examples."""
        self.H *= self.examples / (self.examples + examples)
        self.examples += examples
        x = math.sqrt(2 / self.examples) * rows.to(self.H.dtype)
        self.H += x.t().matmul(x)


def block_counts(forced: Sequence[int], sizes: Sequence[int], pruned: int) -> list[int]:
    """Weights to prune per column block: its forced ones plus a share of the rest.

    The pruned - sum(forced) weights left to choose go to the blocks in proportion to their
    unforced weights (largest remainders, earlier block first on ties), so the layer prunes
    exactly `pruned` and each block about the layer's sparsity.
    """
    free = [n - f for n, f in zip(sizes, forced, strict=True)]
    total_free = sum(free)
    extra = max(0, pruned - sum(forced))
    if total_free == 0 or extra == 0:
        return list(forced)
    extra = min(extra, total_free)
    base = [extra * u // total_free for u in free]
    remainders = [extra * u % total_free for u in free]
    order = sorted(range(len(free)), key=lambda b: -remainders[b])  # stable: earlier first
    for b in order[: extra - sum(base)]:
        base[b] += 1
    return [f + e for f, e in zip(forced, base, strict=True)]


def _lowest(scores: Tensor, k: int) -> Tensor:
    """Boolean mask of the k lowest scores (ties: the earlier flat position first)."""
    chosen = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    chosen[torch.argsort(scores.flatten(), stable=True)[:k]] = True
    return chosen.view(scores.shape)


def reconstruct(
    W: Tensor,
    H: Tensor,
    *,
    blocksize: int = 128,
    percdamp: float = 0.01,
    counts: Sequence[int] | None = None,
    sparsity: float = 0.0,
    prune_per_group: int = 0,
    m: int = 0,
    forced: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Prune W (rows, columns) against calibration Hessian H, updating the weights kept.

    Args:
        W: the weight as (rows, columns), columns the input features of H; not modified.
        H: (columns, columns) from Hessian; not modified.
        blocksize: columns per block.
        percdamp: dampening, a fraction of the mean of H's diagonal added to it.
        counts: unstructured: weights to prune in each block (block_counts); None: the
            reference's threshold, w^2/d^2 <= its sorted value at int(numel * sparsity).
        sparsity: the reference threshold's fraction (counts None).
        prune_per_group: N:M: weights pruned in each group of m consecutive columns of a
            row (the reference's prunen, m its prunem); 0: unstructured.
        m: group size.
        forced: bool (rows, columns), True where the weight must be pruned (earlier masks);
            forced weights are pruned first, within the counts.
    Returns:
        (new weights, keep mask (bool)), both (rows, columns).
    Raises:
        torch.linalg.LinAlgError: H + damp is not positive definite.
    """
    W = W.clone()
    H = H.clone()
    rows, columns = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns, device=W.device)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    pruned = torch.zeros_like(W, dtype=torch.bool)

    for b, i1 in enumerate(range(0, columns, blocksize)):
        i2 = min(i1 + blocksize, columns)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        f1 = None if forced is None else forced[:, i1:i2]

        if prune_per_group == 0:
            tmp = W1**2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            if f1 is not None:
                tmp = tmp.masked_fill(f1, float("-inf"))
            if counts is None:
                thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
                mask1 = tmp <= thresh
            else:
                mask1 = _lowest(tmp, counts[b])
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)

        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            if prune_per_group != 0 and i % m == 0:
                tmp = W1[:, i : i + m] ** 2 / (torch.diag(Hinv1)[i : i + m].reshape((1, -1))) ** 2
                group = mask1[:, i : i + m]
                if f1 is not None:
                    tmp = tmp.masked_fill(f1[:, i : i + m], float("-inf"))
                    group |= f1[:, i : i + m]
                group.scatter_(1, torch.argsort(tmp, dim=1, stable=True)[:, :prune_per_group], True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1

        W[:, i1:i2] = Q1
        pruned[:, i1:i2] = mask1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

    return W, ~pruned
