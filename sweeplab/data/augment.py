"""Batch augmentation on the device: random crop with zero padding and horizontal flip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sweeplab.errors import SweeplabError


def crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Pad each image by `pad` zeros, crop back at a random offset, flip half left-right.

    Offsets and flips are drawn per example from `generator` (on the CPU, so one seeded
    generator serves any device) and applied to the whole batch with one gather: no
    per-example Python loop. Images are standardized, so a zero pad is the channel mean.

    Args:
        x: a batch (N, C, H, W) on any device.
        generator: seeded CPU generator; the same state gives the same crops and flips.
        pad: pixels of padding per side; offsets lie in [0, 2 * pad].
    Returns:
        A new batch shaped like x.
    """
    if x.dim() != 4:
        raise SweeplabError(f"crop_flip needs a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if pad < 0:
        raise SweeplabError(f"augmentation pad={pad} must be >= 0, e.g. 4")
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.arange(w)
    # A flipped example reads its crop's columns right to left.
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - cols, cols)  # (N, W)
    rows = dy[:, None] + torch.arange(h)  # (N, H)
    device = x.device
    batch = torch.arange(n, device=device)[:, None, None]
    rows, cols = rows.to(device)[:, :, None], cols.to(device)[:, None, :]
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # (N, H+2p, W+2p, C)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()
