"""Scaled dot-product attention, written out and fast, and multi-head attention.

Chapter 02 (network architectures); Vaswani et al. 2017, "Attention is all you need".

Shapes: B batch, h heads, N query tokens, M key/value tokens, d head width, D model width
(D = h * d).

Masks follow one convention everywhere in the course:

* a **float** mask is *additive*: ``0`` keeps a score, ``-inf`` removes it (a causal mask has
  ``-inf`` above the diagonal);
* a **bool** mask says which scores are *allowed*: ``True`` = may attend, ``False`` = blocked
  (the convention of :func:`torch.nn.functional.scaled_dot_product_attention`).

A mask must broadcast to ``(B, h, N, M)``; a 2-D mask ``(N, M)`` is shared by the batch and heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "attention",
    "attention_explicit",
    "MultiHeadAttention",
]


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (B, h, N, d) (4 dims), got {tuple(t.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"k and v must agree on (B, h, M): got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    if q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q must have shape (B, h, N, d) matching k's (B, h, M, d) = {tuple(k.shape)}, "
            f"got {tuple(q.shape)}"
        )


def _check_mask(attn_mask: torch.Tensor | None, shape: tuple[int, int, int, int]) -> None:
    if attn_mask is None:
        return
    try:
        torch.broadcast_shapes(attn_mask.shape, shape)
    except RuntimeError:
        raise ValueError(
            f"attn_mask must broadcast to (B, h, N, M) = {shape}, got {tuple(attn_mask.shape)}"
        ) from None
    if attn_mask.dim() > 4:
        raise ValueError(f"attn_mask must have at most 4 dims, got {tuple(attn_mask.shape)}")


def attention_explicit(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention step by step: scores, mask, softmax, weighted sum.

    Args:
        q: ``(B, h, N, d)`` queries.  k, v: ``(B, h, M, d)`` keys and values.
        attn_mask: optional additive float or boolean "may attend" mask broadcastable to
            ``(B, h, N, M)`` (see the module docstring).

    Returns:
        ``(out, weights)``: ``out`` ``(B, h, N, d)``; ``weights`` ``(B, h, N, M)``, each row a
        probability distribution over the M keys.

    Raises:
        ValueError: q, k, v not 4-D or not agreeing on ``(B, h)`` / ``d`` / ``M``, or a mask
            that does not broadcast to ``(B, h, N, M)``.
    """
    _check_qkv(q, k, v)
    _check_mask(attn_mask, (q.shape[0], q.shape[1], q.shape[2], k.shape[2]))
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, h, N, M) similarity of each pair
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.to(scores.dtype)
    weights = scores.softmax(dim=-1)  # rows sum to 1 over the keys
    out = weights @ v  # (B, h, N, d): weighted sum of the values
    return out, weights


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention through the fused kernel, or the explicit version when the weights are wanted.

    Same arguments and result as :func:`attention_explicit`; with ``need_weights=False`` the
    weights are ``None`` and the computation runs in
    :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels
    on GPU).  Both paths agree to float rounding (tested in ``tests/test_models_attention.py``).
    Raises ValueError as :func:`attention_explicit`.
    """
    if need_weights:
        return attention_explicit(q, k, v, attn_mask)
    _check_qkv(q, k, v)
    _check_mask(attn_mask, (q.shape[0], q.shape[1], q.shape[2], k.shape[2]))
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask), None


class MultiHeadAttention(nn.Module):
    """Multi-head attention with a packed q/k/v input projection and an output projection.

    Parameter names match :class:`torch.nn.MultiheadAttention` (``in_proj_weight`` ``(3D, D)``,
    ``in_proj_bias`` ``(3D,)``, ``out_proj``), so its state dict loads directly.

    ``forward(x)`` is self-attention; ``forward(x, context)`` is cross-attention (queries from
    ``x`` ``(B, N, D)``, keys and values from ``context`` ``(B, M, D)``).  Returns ``(B, N, D)``
    and, with ``need_weights=True``, the per-head weights ``(B, h, N, M)`` (else ``None``).

    Raises ValueError when ``dim`` is not divisible by ``heads``, when ``x`` is not
    ``(B, N, dim)`` or ``context`` not ``(B, M, dim)``, and for a mask that does not broadcast.
    """

    def __init__(self, dim: int, heads: int, bias: bool = True):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, N, _ = t.shape
        # (B, N, D) -> (B, h, N, d)
        return t.reshape(B, N, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (B, N, D={self.dim}), got {tuple(x.shape)}")
        if context is not None and (
            context.dim() != 3 or context.shape[0] != x.shape[0] or context.shape[-1] != self.dim
        ):
            raise ValueError(
                f"context must have shape (B={x.shape[0]}, M, D={self.dim}), "
                f"got {tuple(context.shape)}"
            )
        D = self.dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if context is None:
            q, k, v = F.linear(x, w, b).chunk(3, dim=-1)  # (B, N, 3D) -> three (B, N, D)
        else:
            q = F.linear(x, w[:D], None if b is None else b[:D])
            k, v = F.linear(context, w[D:], None if b is None else b[D:]).chunk(2, dim=-1)
        out, weights = attention(
            self._split_heads(q), self._split_heads(k), self._split_heads(v), attn_mask,
            need_weights,
        )
        B, _, N, _ = out.shape
        out = out.transpose(1, 2).reshape(B, N, D)  # (B, h, N, d) -> (B, N, D): heads side by side
        return self.out_proj(out), weights
