"""Attention modules as structured pruning sees them: any module with integer `num_heads` and
`head_dim` attributes (sweeplab.models.vit.Attention, timm's and most others). Its q, k, v
outputs are heads of head_dim channels each: they can lose whole heads
(sweeplab.pruning.structured.heads), not single channels, or heads would mix."""

from __future__ import annotations

from torch import nn


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modules with integer num_heads and head_dim attributes, keyed by module name."""
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(getattr(m, "num_heads", None), int)
        and isinstance(getattr(m, "head_dim", None), int)
    }


def owner(member: str, attentions: dict[str, nn.Module]) -> str | None:
    """The attention module (a key of attentions) that module `member` lies in, if any."""
    return next((a for a in attentions if member.startswith(a + ".")), None)
