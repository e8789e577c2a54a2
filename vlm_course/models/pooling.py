"""Pooling heads that turn a CNN feature map ``(B, C, H, W)`` into one vector per image
``(B, D_out)``.

Chapter 02 (network architectures).  A plain ResNet (He et al. 2016) ends with global average
pooling, which forgets *where* things were.  CLIP (Radford et al. 2021) replaces it with attention
pooling: the mean of the feature grid is the single query, it attends over the grid (and itself),
and a positional embedding on every token lets the pooled vector depend on position.

Both heads are small separate modules, so a :class:`~vlm_course.models.resnet.ResNet` takes its
pooling head as a part and the two can be swapped in an ablation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention

__all__ = ["GlobalAvgPool", "AttentionPool2d"]


def _check_map(x: torch.Tensor, channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"x must have shape (B, C={channels}, H, W), got {tuple(x.shape)}")


class GlobalAvgPool(nn.Module):
    """Mean over the spatial grid, then an optional bias-free linear projection.

    ``(B, C, H, W) -> (B, C)`` (``output_dim=None``) or ``(B, output_dim)``.  Works at any H, W.
    """

    def __init__(self, dim: int, output_dim: int | None = None):
        super().__init__()
        self.dim = dim
        self.output_dim = output_dim or dim
        self.proj = nn.Linear(dim, output_dim, bias=False) if output_dim else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_map(x, self.dim)
        return self.proj(x.mean(dim=(2, 3)))


class AttentionPool2d(nn.Module):
    """CLIP's attention pooling over a ``grid_size x grid_size`` feature map.

    Steps for ``x`` ``(B, C, H, W)`` with ``H = W = grid_size`` and ``C = dim``:

    1. flatten to ``HW`` tokens ``(B, HW, C)`` and prepend their mean: ``(B, HW + 1, C)``;
    2. add ``positional_embedding`` ``(HW + 1, C)`` to all of them (the mean token too);
    3. multi-head attention with **one query**, the (mean + pos) token, over all ``HW + 1`` tokens;
    4. output projection ``c_proj`` to ``output_dim``.

    Parameter names (``positional_embedding``, ``q_proj``, ``k_proj``, ``v_proj``, ``c_proj``)
    match OpenCLIP's ``modified_resnet.AttentionPool2d``.  ``forward(x, need_weights=True)`` also
    returns the attention weights ``(B, h, HW + 1)`` of the query over [mean, grid tokens...].
    """

    def __init__(self, grid_size: int, dim: int, heads: int, output_dim: int | None = None):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.grid_size, self.dim, self.heads = grid_size, dim, heads
        self.output_dim = output_dim or dim
        self.positional_embedding = nn.Parameter(torch.randn(grid_size**2 + 1, dim) / dim**0.5)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, self.output_dim)
        std = dim**-0.5
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(lin.weight, std=std)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, HW + 1, C)``: mean token first, positional embedding added."""
        _check_map(x, self.dim)
        B, C, H, W = x.shape
        if (H, W) != (self.grid_size, self.grid_size):
            raise ValueError(
                f"x must have a {self.grid_size}x{self.grid_size} grid, "
                f"(B, C, H, W) = (B, {C}, {self.grid_size}, {self.grid_size}); got {tuple(x.shape)}"
            )
        x = x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, HW, C), row-major over the grid
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # (B, HW + 1, C)
        return x + self.positional_embedding.to(x.dtype)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        t = self.tokens(x)
        B, N, C = t.shape
        h, d = self.heads, C // self.heads
        # (B, n, C) -> (B, h, n, d): one query (the mean token), N keys and values
        q = self.q_proj(t[:, :1]).reshape(B, 1, h, d).transpose(1, 2)
        k = self.k_proj(t).reshape(B, N, h, d).transpose(1, 2)
        v = self.v_proj(t).reshape(B, N, h, d).transpose(1, 2)
        out, weights = attention(q, k, v, need_weights=need_weights)
        out = self.c_proj(out.transpose(1, 2).reshape(B, C))  # heads side by side, project
        if need_weights:
            return out, weights[:, :, 0]  # (B, h, 1, N) -> (B, h, N)
        return out

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Value and output projection at every grid location (MaskCLIP): ``(B, output_dim, H, W)``.

        Skips the query/key part, so each location keeps its own feature instead of the pool.
        """
        _check_map(x, self.dim)
        v = F.conv2d(x, self.v_proj.weight[:, :, None, None], self.v_proj.bias)
        return F.conv2d(v, self.c_proj.weight[:, :, None, None], self.c_proj.bias)
