"""A small vision transformer (Dosovitskiy et al. 2021) for MNIST-sized images.

Patches of patch x patch pixels are embedded by one Conv2d (kernel = stride = patch), a class
token is prepended (pool=cls) or not (pool=mean), a learned positional embedding is added, then
`depth` pre-norm blocks: x + attn(LN(x)), x + mlp(LN(x)); a final LayerNorm and a Linear head
read the class token or the mean over patches. Every weight matrix is an nn.Linear (q, k, v
and proj are separate layers), so unstructured criteria, N:M patterns and Torch-Pruning see
them like any other layer; the two attention matmuls (q k^T and attn v) have no parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_positive

POOLS = ("cls", "mean")


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v and output projections.

    head_dim is fixed; num_heads is read from the q layer's width, so removing whole heads'
    rows from q, k, v and columns from proj (structured head pruning) leaves a module whose
    forward still runs, with num_heads counting the heads left.

    Args:
        width: embedding dimension (tokens in and out).
        num_heads: heads.
        head_dim: dimension of one head's queries, keys and values.
    """

    def __init__(self, width: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        inner = num_heads * self.head_dim
        self.q = nn.Linear(width, inner)
        self.k = nn.Linear(width, inner)
        self.v = nn.Linear(width, inner)
        self.proj = nn.Linear(inner, width)

    @property
    def num_heads(self) -> int:
        """Heads now: the q layer's outputs over head_dim."""
        return self.q.out_features // self.head_dim

    def _heads(self, t: Tensor) -> Tensor:
        """(..., tokens, heads * head_dim) -> (..., heads, tokens, head_dim)."""
        return t.reshape(*t.shape[:-1], self.num_heads, self.head_dim).transpose(-3, -2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        attn = (q @ k.transpose(-2, -1) * self.head_dim**-0.5).softmax(-1)
        out = (attn @ v).transpose(-3, -2)
        return self.proj(out.reshape(*out.shape[:-2], self.num_heads * self.head_dim))


class MLP(nn.Module):
    """Linear-GELU-Linear with `hidden` units."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, width: int, num_heads: int, head_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, num_heads, head_dim)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _check_shape(input_shape: Sequence[int], patch: int) -> tuple[int, int, int]:
    """(channels, patches, patch) for images of input_shape; errors name model.patch."""
    if len(input_shape) != 3:
        raise SweeplabError(
            f"model=vit needs images (C, H, W) but the data gives examples of shape "
            f"{tuple(input_shape)}; use an image dataset, or model=mlp"
        )
    channels, height, width = (int(s) for s in input_shape)
    if height % patch or width % patch:
        fits = [p for p in range(1, min(height, width) + 1) if height % p == 0 and width % p == 0]
        raise SweeplabError(
            f"model.patch={patch} does not divide the data's {height}x{width} images; use one "
            f"of {fits[1:] or fits}, e.g. model.patch={fits[len(fits) // 2]}"
        )
    return channels, (height // patch) * (width // patch), patch


class ViT(nn.Module):
    """Vision transformer: patch embedding, positional embedding, pre-norm blocks, a head.

    Args:
        input_shape: shape of one example (C, H, W); patch must divide H and W.
        num_classes: outputs of the classifier.
        patch: side of a square patch in pixels (7: 16 patches of a 28x28 image).
        width: embedding dimension.
        depth: transformer blocks.
        heads: attention heads per block.
        head_dim: dimension of one head; None: width / heads (heads must divide width).
        mlp_ratio: MLP hidden units per embedding dimension.
        pool: "cls" (a learned class token) or "mean" (the mean of the patch tokens).
        name: recorded in rows and named in errors.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        patch: int = 7,
        width: int = 64,
        depth: int = 4,
        heads: int = 4,
        head_dim: int | None = None,
        mlp_ratio: float = 2.0,
        pool: str = "cls",
        name: str = "vit",
    ) -> None:
        super().__init__()
        for key, value in (("patch", patch), ("width", width), ("depth", depth), ("heads", heads)):
            check_positive(f"model.{key}", value, integer=True, example="4")
        check_positive("model.mlp_ratio", mlp_ratio, example="2")
        if head_dim is not None:
            check_positive("model.head_dim", head_dim, integer=True, example="16")
        elif width % heads:
            fit = max(h for h in range(1, heads + 1) if width % h == 0)
            raise SweeplabError(
                f"model.heads={heads} does not divide model.width={width}; use a divisor of "
                f"the width, e.g. model.heads={fit}, or set model.head_dim"
            )
        if pool not in POOLS:
            raise SweeplabError(f"model.pool={pool!r} is not one of {list(POOLS)}")
        channels, patches, patch = _check_shape(input_shape, patch)
        self.pool = pool
        self.patch_embed = nn.Conv2d(channels, width, patch, stride=patch)
        tokens = patches + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
        hidden = max(1, round(width * mlp_ratio))
        self.blocks = nn.Sequential(
            *(Block(width, heads, head_dim or width // heads, hidden) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(-2).transpose(-2, -1)  # (N, patches, width)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm(self.blocks(x + self.pos_embed))
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(1))
