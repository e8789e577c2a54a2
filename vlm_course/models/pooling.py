"""Pooling heads that turn a CNN feature map ``(B, C, H, W)`` into one vector per image
``(B, D_out)``.

Chapter 02 (network architectures).  A plain ResNet (He et al. 2016) ends with global average
pooling, which forgets *where* things were.  CLIP (Radford et al. 2021) replaces it with attention
pooling: the mean of the feature grid is the single query, it attends over the grid (and itself),
and a positional embedding on every token lets the pooled vector depend on position.

Both heads are small separate modules, so a :class:`~vlm_course.models.resnet.ResNet` takes its
pooling head as a part and the two can be swapped in an ablation.  Both follow the course's
attention convention: ``forward(x, return_attention=True)`` returns ``(output, attentions)``, a list
with one ``(B, h, 1, HW + 1)`` tensor for the attention pool and an empty list for the average.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .image_size import as_hw

__all__ = ["GlobalAvgPool", "AttentionPool2d"]


def _check_map(x: torch.Tensor, channels: int) -> None:
    """Raises ValueError unless ``x`` is ``(B, channels, H, W)``."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"x must have shape (B, C={channels}, H, W), got {tuple(x.shape)}")


class GlobalAvgPool(nn.Module):
    """Mean over the spatial grid, then an optional bias-free linear projection.

    ``(B, C, H, W) -> (B, C)`` (``output_dim=None``) or ``(B, output_dim)``.  Works at any H, W.
    Raises ValueError unless ``x`` is ``(B, dim, H, W)``.
    """

    def __init__(self, dim: int, output_dim: int | None = None):
        super().__init__()
        self.dim = dim
        self.output_dim = output_dim or dim
        self.proj = nn.Linear(dim, output_dim, bias=False) if output_dim else nn.Identity()

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, output_dim)``; with ``return_attention``: ``(output, [])``."""
        _check_map(x, self.dim)
        out = self.proj(x.mean(dim=(2, 3)))
        return (out, []) if return_attention else out


class AttentionPool2d(nn.Module):
    """CLIP's attention pooling over a fixed ``(H, W)`` feature grid.

    ``grid_size``: an int (square grid, as in CLIP) or ``(H, W)``.
    Steps for ``x`` ``(B, C, H, W)`` with ``(H, W)`` the grid and ``C = dim``:

    1. flatten to ``HW`` tokens ``(B, HW, C)`` and prepend their mean: ``(B, HW + 1, C)``;
    2. add ``positional_embedding`` ``(HW + 1, C)`` to all of them (the mean token too);
    3. multi-head attention with **one query**, the (mean + pos) token, over all ``HW + 1`` tokens;
    4. output projection ``c_proj`` to ``output_dim``.

    Parameter names (``positional_embedding``, ``q_proj``, ``k_proj``, ``v_proj``, ``c_proj``)
    match OpenCLIP's ``modified_resnet.AttentionPool2d``.  ``forward(x, return_attention=True)``
    also returns ``[weights]``, the ``(B, h, 1, HW + 1)`` attention of the query over
    [mean, grid tokens...].  Raises ValueError when ``dim`` is not divisible by ``heads``.
    """

    def __init__(self, grid_size: int | tuple[int, int], dim: int, heads: int,
                 output_dim: int | None = None):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.grid = as_hw(grid_size, "grid_size")
        self.grid_size, self.dim, self.heads = grid_size, dim, heads
        self.output_dim = output_dim or dim
        n = self.grid[0] * self.grid[1]
        self.positional_embedding = nn.Parameter(torch.randn(n + 1, dim) / dim**0.5)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, self.output_dim)
        std = dim**-0.5
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(lin.weight, std=std)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, HW + 1, C)``: mean token first, positional embedding added.

        Raises ValueError unless ``x`` is ``(B, dim, H, W)`` with the configured grid.
        """
        _check_map(x, self.dim)
        B, C, H, W = x.shape
        gh, gw = self.grid
        if (H, W) != (gh, gw):
            raise ValueError(
                f"x must have a {gh}x{gw} grid, "
                f"(B, C, H, W) = (B, {C}, {gh}, {gw}); got {tuple(x.shape)}"
            )
        x = x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, HW, C), row-major over the grid
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # (B, HW + 1, C)
        return x + self.positional_embedding.to(x.dtype)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, output_dim)``; with ``return_attention``:
        ``(output, [weights (B, h, 1, HW + 1)])``.  Raises ValueError as :meth:`tokens`."""
        t = self.tokens(x)
        B, N, C = t.shape
        h, d = self.heads, C // self.heads
        # (B, n, C) -> (B, h, n, d): one query (the mean token), N keys and values
        q = self.q_proj(t[:, :1]).reshape(B, 1, h, d).transpose(1, 2)
        k = self.k_proj(t).reshape(B, N, h, d).transpose(1, 2)
        v = self.v_proj(t).reshape(B, N, h, d).transpose(1, 2)
        out, weights = attention(q, k, v, need_weights=return_attention)
        out = self.c_proj(out.transpose(1, 2).reshape(B, C))  # heads side by side, project
        return (out, [weights]) if return_attention else out

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Value and output projection at every grid location (MaskCLIP): ``(B, output_dim, H, W)``.

        Skips the query/key part, so each location keeps its own feature instead of the pool.
        Works at any H, W.  Raises ValueError unless ``x`` is ``(B, dim, H, W)``.
        """
        _check_map(x, self.dim)
        v = F.conv2d(x, self.v_proj.weight[:, :, None, None], self.v_proj.bias)
        return F.conv2d(v, self.c_proj.weight[:, :, None, None], self.c_proj.bias)
