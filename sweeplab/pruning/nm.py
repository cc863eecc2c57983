"""N:M semi-structured sparsity: in every group of M consecutive weights along a layer's input
dimension, keep the N highest-scoring.

Groups are NVIDIA apex ASP's (apex/contrib/sparsity/sparse_masklib.py `create_mask` with
`m4n2_1d`): a Linear weight (out, in) groups M consecutive in_features of one output row; a
Conv2d weight (out, in, kh, kw) is permuted to (kh, kw, out, in), so a group is M consecutive
input channels at one (output channel, kh, kw) position (Conv1d and Conv3d alike). A layer whose
input dimension (weight.shape[1]: in_features, or in_channels per conv group) is not a multiple
of M is left dense and listed as excluded. ASP also skips layers its fp16 tensor-core kernels
cannot take (out % 8 or in % 16 nonzero); the pattern itself does not need that, so such layers
are pruned here.

The schedule's target sparsity counts the weights of eligible layers: target s keeps
M - round(s * M) weights per group, never fewer than N. One-shot at 1 - N/M gives N:M; an
iterative or gradual schedule tightens the pattern round by round (e.g. 4:4 -> 3:4 -> 2:4),
every round a valid pattern on the same groups, what earlier rounds pruned staying pruned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sweeplab.errors import SweeplabError


@dataclass(frozen=True)
class Pattern:
    """Keep n of every m consecutive weights (n == m: the layer is dense)."""

    n: int
    m: int

    @classmethod
    def parse(cls, value: object, key: str = "pruning.pattern") -> Pattern:
        """`"2:4"` as Pattern(2, 4); SweeplabError naming key and value otherwise."""
        if isinstance(value, int) and not isinstance(value, bool):
            raise SweeplabError(
                f"{key}={value} is a number, not N:M; quote the pattern in YAML files "
                f"({key}: '2:4'), which read an unquoted 2:4 as the base-60 number 124"
            )
        found = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(value))
        if not found:
            raise SweeplabError(f"{key}={value!r} is not N:M; use e.g. {key}=2:4")
        n, m = int(found.group(1)), int(found.group(2))
        if not 1 <= n < m:
            raise SweeplabError(
                f"{key}={value} needs 1 <= N < M (keep N of every M weights); use e.g. {key}=2:4"
            )
        return cls(n, m)

    @property
    def sparsity(self) -> float:
        """Fraction of an eligible layer's weights the pattern prunes: 1 - N/M."""
        return 1.0 - self.n / self.m

    @property
    def index_bits(self) -> int:
        """Bits that locate one kept value inside its group: ceil(log2(M))."""
        return max(1, math.ceil(math.log2(self.m)))

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


def eligible(shape: Sequence[int], m: int) -> bool:
    """Whether a weight of this shape splits into groups of m along its input dimension."""
    return len(shape) >= 2 and shape[1] % m == 0


def grouped(t: Tensor, m: int) -> Tensor:
    """t as rows of m consecutive entries along dim 1 (ASP's grouping), shape (numel / m, m)."""
    return t.movedim(1, -1).reshape(-1, m)


def ungrouped(groups: Tensor, shape: Sequence[int]) -> Tensor:
    """The inverse of `grouped`: rows of m back to a tensor of `shape`."""
    moved = (shape[0], *shape[2:], shape[1])
    return groups.reshape(moved).movedim(-1, 1).contiguous()


def kept_per_group(pattern: Pattern, sparsity: float) -> int:
    """Weights kept per group for a target sparsity of the eligible weights (>= pattern.n)."""
    pruned = min(pattern.m - pattern.n, max(0, round(sparsity * pattern.m)))
    return pattern.m - pruned


class NMMasks(dict):  # dict[str, Tensor]
    """Masks (parameter name -> 0/1) that follow an N:M pattern, with the layers left dense.

    Attributes:
        pattern: the pattern these masks follow (a tightening round's, e.g. 3:4 before 2:4).
        excluded: parameter names of layers whose input dimension is not a multiple of M.
    """

    def __init__(
        self, masks: Mapping[str, Tensor], pattern: Pattern, excluded: Iterable[str]
    ) -> None:
        super().__init__(masks)
        self.pattern = pattern
        self.excluded = tuple(excluded)

    def fields(self) -> dict[str, object]:
        """Row fields: the pattern applied and the module names left dense."""
        return {
            "nm_pattern": str(self.pattern),
            "nm_excluded": [name.rsplit(".", 1)[0] for name in self.excluded],
        }

    def grouped_layers(self) -> list[str]:
        """Parameter names whose masks follow the pattern."""
        return [name for name in self if name not in self.excluded]


def select_nm(
    scores: Mapping[str, Tensor],
    pattern: Pattern,
    sparsity: float,
    existing: Mapping[str, Tensor] | None = None,
) -> NMMasks:
    """Masks that keep the highest-scoring weights of every group of M, N' per group.

    Args:
        scores: name -> score (higher = keep), shaped like the weight.
        pattern: the final N:M pattern.
        sparsity: this step's target, a fraction of the eligible weights; N' =
            kept_per_group(pattern, sparsity).
        existing: earlier masks; what they prune stays pruned (a group keeps fewer than N'
            only if earlier masks left it fewer survivors).
    Returns:
        NMMasks over every scored weight (excluded layers all ones). Among equal scores the
        earlier position is pruned first, as budget.select does.
    """
    keep_n = kept_per_group(pattern, sparsity)
    masks: dict[str, Tensor] = {}
    excluded = []
    for name, score in scores.items():
        s = score.detach().float()
        if existing is not None and name in existing:  # pruned before: lowest, stays pruned
            s = s.masked_fill(existing[name].to(s.device) == 0, float("-inf"))
        if not eligible(s.shape, pattern.m):
            excluded.append(name)
            masks[name] = torch.ones_like(s)
            continue
        groups = grouped(s, pattern.m)
        keep = torch.ones_like(groups, dtype=torch.bool)
        order = torch.argsort(groups, dim=1, stable=True)  # lowest first
        keep.scatter_(1, order[:, : pattern.m - keep_n], False)
        keep &= groups > float("-inf")
        masks[name] = ungrouped(keep.float(), s.shape)
    return NMMasks(masks, Pattern(keep_n, pattern.m), excluded)


def check_options(
    pattern: Pattern,
    sparsity: float | None,
    *,
    modes: Sequence[str],
    layer_scale: Mapping[str, float],
    distribution: str | None,
) -> float:
    """The sparsity a pattern implies (1 - N/M); SweeplabError for options it overrides.

    Args:
        pattern: the configured pattern.
        sparsity: pruning.sparsity as configured (None: take the pattern's).
        modes: threshold-type modes set (threshold, quality).
        layer_scale: pruning.layer_scale.
        distribution: pruning.distribution.
    """
    if modes:
        raise SweeplabError(
            f"pruning.pattern={pattern} decides the count per group; remove pruning.{modes[0]}"
        )
    if layer_scale:
        raise SweeplabError(
            f"pruning.pattern={pattern} prunes {pattern.sparsity:g} of every eligible layer; "
            "remove pruning.layer_scale"
        )
    if distribution is not None:
        raise SweeplabError(
            f"pruning.pattern={pattern} prunes {pattern.sparsity:g} of every eligible layer; "
            f"remove pruning.distribution={distribution} (or pruning.pattern)"
        )
    if sparsity is not None and abs(sparsity - pattern.sparsity) > 1e-9:
        raise SweeplabError(
            f"pruning.sparsity={sparsity:g} disagrees with pruning.pattern={pattern}, which "
            f"prunes {pattern.sparsity:g} of each eligible layer; set "
            f"pruning.sparsity={pattern.sparsity:g} or pruning.sparsity=null"
        )
    return pattern.sparsity


def check_model(shapes: Mapping[str, Sequence[int]], pattern: Pattern, model: str) -> None:
    """Refuse a pattern no prunable layer of the model can follow."""
    if not any(eligible(shape, pattern.m) for shape in shapes.values()):
        inputs = {name.rsplit(".", 1)[0]: shape[1] for name, shape in shapes.items()}
        raise SweeplabError(
            f"pruning.pattern={pattern}: no prunable layer of model {model} has an input "
            f"dimension divisible by {pattern.m} (inputs: {inputs}); use a smaller M"
        )
