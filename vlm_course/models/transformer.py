"""Transformer blocks: pre-norm (as in CLIP and ViT) and post-norm (as in the original Transformer).

Chapter 02 (network architectures).  Vaswani et al. 2017 introduced the block with the LayerNorm
*after* each residual addition (post-norm); GPT-2, ViT and CLIP moved it *before* each sub-layer
(pre-norm), which keeps an identity path from input to output and trains stably at depth without a
learning-rate warm-up (Xiong et al. 2020, "On layer normalization in the Transformer architecture").

Shapes: B batch, N tokens, D width, h heads.  Parameter names follow OpenCLIP's
``ResidualAttentionBlock`` (``ln_1``, ``attn``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``), so its
state dicts load directly.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .attention import MultiHeadAttention

__all__ = ["QuickGELU", "make_activation", "ResidualAttentionBlock", "Transformer"]

ACTIVATIONS = ("gelu", "quick_gelu")


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the sigmoid approximation of GELU used by OpenAI's CLIP weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def make_activation(name: str) -> nn.Module:
    """``"gelu"`` (exact, erf-based) or ``"quick_gelu"`` (see :class:`QuickGELU`).

    Raises ValueError for any other name.
    """
    if name == "gelu":
        return nn.GELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class ResidualAttentionBlock(nn.Module):
    """One transformer block: multi-head self-attention and an MLP, each in a residual branch.

    ``norm_first=True`` (pre-norm, the default; CLIP, ViT)::

        x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))

    ``norm_first=False`` (post-norm; Vaswani et al. 2017, BERT) -- the taught alternative::

        x = ln_1(x + attn(x));   x = ln_2(x + mlp(x))

    Input and output ``(B, N, D)``.  ``attn_mask`` follows :mod:`vlm_course.models.attention`
    (additive float or boolean "may attend", broadcastable to ``(B, h, N, N)``).
    Raises ValueError for an unknown ``activation``, ``dim`` not divisible by ``heads``, or
    inputs of the wrong shape (see :class:`~vlm_course.models.attention.MultiHeadAttention`).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        activation: str = "gelu",
        ln_eps: float = 1e-5,
        norm_first: bool = True,
    ):
        super().__init__()
        self.norm_first = norm_first
        hidden = int(dim * mlp_ratio)
        self.ln_1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = MultiHeadAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(dim, hidden)),
                    ("act", make_activation(activation)),
                    ("c_proj", nn.Linear(hidden, dim)),
                ]
            )
        )

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ``(x, weights)``; ``weights`` ``(B, h, N, N)`` if ``need_weights`` else
        ``None``."""
        if self.norm_first:
            a, weights = self.attn(self.ln_1(x), attn_mask=attn_mask, need_weights=need_weights)
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        else:
            a, weights = self.attn(x, attn_mask=attn_mask, need_weights=need_weights)
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        return x, weights


class Transformer(nn.Module):
    """A stack of :class:`ResidualAttentionBlock` (``resblocks``), width ``D``, ``layers`` deep.

    ``forward(x (B, N, D), attn_mask=None)`` returns ``(B, N, D)``;
    ``forward(..., return_attention=True)`` returns ``(x, [weights of each layer (B, h, N, N)])``.

    Initialisation follows CLIP: attention in-projection std ``D**-0.5``, output projections std
    ``D**-0.5 * (2 * layers)**-0.5``, MLP input std ``(2D)**-0.5``.

    Raises ValueError when ``layers < 1`` or ``width`` is not divisible by ``heads``; in
    ``forward``, when ``x`` is not ``(B, N, width)`` or ``attn_mask`` does not broadcast.
    """

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: float = 4.0,
        activation: str = "gelu",
        ln_eps: float = 1e-5,
        norm_first: bool = True,
    ):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, mlp_ratio, activation, ln_eps, norm_first)
            for _ in range(layers)
        )
        self.init_parameters()

    def init_parameters(self) -> None:
        attn_std = self.width**-0.5
        proj_std = self.width**-0.5 * (2 * self.layers) ** -0.5
        fc_std = (2 * self.width) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        if x.dim() != 3 or x.shape[-1] != self.width:
            raise ValueError(f"x must have shape (B, N, D={self.width}), got {tuple(x.shape)}")
        maps = []
        for block in self.resblocks:
            x, weights = block(x, attn_mask=attn_mask, need_weights=return_attention)
            maps.append(weights)
        return (x, maps) if return_attention else x
