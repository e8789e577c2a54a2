"""Vision Transformer (CLIP variant): patches -> tokens -> transformer -> class-token embedding.

Chapter 02 (network architectures).  Dosovitskiy et al. 2021 cut an image into P x P patches,
embed each linearly, prepend a learnable class token and add learnable position embeddings.
CLIP (Radford et al. 2021) adds a LayerNorm *before* the encoder (``ln_pre``; the survey's
"normalization layer before the transformer encoder"), uses pre-norm blocks, normalises the class
token at the end (``ln_post``) and maps it with a bias-free projection ``proj``.

Shapes: images ``(B, C, H, W)`` float; patches ``(B, N, P*P*C)`` with ``N = (H/P) * (W/P)`` in
row-major order and each patch flattened as ``(row, column, channel)``; tokens ``(B, N + 1, D)``
(class token first); output ``(B, output_dim)``, not normalised.
Parameter names follow OpenCLIP's ``VisionTransformer`` except ``patch_embed`` (a Linear on
patchified pixels, equal to OpenCLIP's stride-P ``conv1`` with its weight permuted).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .transformer import Transformer

__all__ = ["patchify", "unpatchify", "ViTConfig", "VisionTransformer"]


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, N, P*P*C)``: non-overlapping P x P patches, row-major, channels
    last."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W) (4 dims), got {tuple(images.shape)}")
    B, C, H, W = images.shape
    P = patch_size
    if H % P or W % P:
        raise ValueError(
            f"images height and width must be divisible by patch_size={P}, got (H, W) = ({H}, {W})"
        )
    x = images.reshape(B, C, H // P, P, W // P, P)  # split rows and columns into (grid, within)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, H/P, W/P, P, P, C): grid position first, pixels last
    return x.reshape(B, (H // P) * (W // P), P * P * C)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify` for a square grid: ``(B, N, P*P*C) -> (B, C, H, W)``."""
    if patches.dim() != 3:
        raise ValueError("patches must have shape (B, N, P*P*C) (3 dims), "
                         f"got {tuple(patches.shape)}")
    B, N, K = patches.shape
    P, C = patch_size, channels
    g = int(round(N**0.5))
    if g * g != N or K != P * P * C:
        raise ValueError(
            f"patches must have shape (B, N=g*g, P*P*C={P * P * C}), got {tuple(patches.shape)}"
        )
    x = patches.reshape(B, g, g, P, P, C).permute(0, 5, 1, 3, 2, 4)  # (B, C, g, P, g, P)
    return x.reshape(B, C, g * P, g * P)


@dataclass
class ViTConfig:
    """A CLIP-style ViT.  ``activation``: ``"gelu"`` or ``"quick_gelu"`` (OpenAI CLIP weights)."""

    image_size: int = 64
    patch_size: int = 8
    in_channels: int = 3
    width: int = 64
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    output_dim: int = 64
    activation: str = "gelu"
    ln_eps: float = 1e-5
    norm_first: bool = True  # False: post-norm blocks (the taught ablation)

    @classmethod
    def tiny(cls, **overrides) -> ViTConfig:
        """64x64 images, 8x8 patches (64 tokens + class), width 64, 2 layers, 64-d output."""
        return replace(cls(layers=2), **overrides)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2


class VisionTransformer(nn.Module):
    """CLIP's image tower.  Named stages a notebook can call one at a time:

    ``patchify(images) -> (B, N, P*P*C)`` -> ``embed(patches) -> (B, N + 1, D)`` (linear patch
    embedding, class token, position embeddings) -> ``forward_features(tokens) -> (B, N + 1, D)``
    (``ln_pre``, transformer) -> ``pool(tokens) -> (B, output_dim)`` (``ln_post`` on the class
    token, bias-free ``proj``).  ``forward(images)`` runs all four.
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(
                f"cfg.image_size must be divisible by cfg.patch_size={cfg.patch_size}, "
                f"got {cfg.image_size}"
            )
        self.cfg = cfg
        self.output_dim = cfg.output_dim
        D, P, C = cfg.width, cfg.patch_size, cfg.in_channels
        scale = D**-0.5
        self.patch_embed = nn.Linear(P * P * C, D, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(D))
        self.positional_embedding = nn.Parameter(scale * torch.randn(cfg.num_patches + 1, D))
        self.ln_pre = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.transformer = Transformer(
            D, cfg.layers, cfg.heads, cfg.mlp_ratio, cfg.activation, cfg.ln_eps, cfg.norm_first
        )
        self.ln_post = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.proj = nn.Parameter(scale * torch.randn(D, cfg.output_dim))

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, N, P*P*C)`` with the configured patch size; checks the shape."""
        c = self.cfg
        if images.dim() != 4 or images.shape[1] != c.in_channels:
            raise ValueError(
                f"images must have shape (B, C={c.in_channels}, H, W), got {tuple(images.shape)}"
            )
        patches = patchify(images, c.patch_size)  # raises if H or W is not divisible by P
        if tuple(images.shape[-2:]) != (c.image_size, c.image_size):
            raise ValueError(
                f"images must have shape (B, {c.in_channels}, {c.image_size}, {c.image_size}) "
                f"(the position embeddings fix the grid), got {tuple(images.shape)}"
            )
        return patches

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, N, P*P*C) -> (B, N + 1, D)``: class token first, position embeddings added."""
        c = self.cfg
        K = c.patch_size**2 * c.in_channels
        if patches.dim() != 3 or tuple(patches.shape[1:]) != (c.num_patches, K):
            raise ValueError(
                f"patches must have shape (B, N={c.num_patches}, P*P*C={K}), "
                f"got {tuple(patches.shape)}"
            )
        x = self.patch_embed(patches)  # (B, N, D)
        cls = self.class_embedding.expand(x.shape[0], 1, -1).to(x.dtype)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1)  # (B, N + 1, D)
        return x + self.positional_embedding.to(x.dtype)

    def forward_features(self, tokens: torch.Tensor, return_attention: bool = False):
        """``ln_pre`` then the transformer: ``(B, N + 1, D) -> (B, N + 1, D)`` (no final norm).

        With ``return_attention=True`` also the per-layer weights ``[(B, h, N + 1, N + 1)]``.
        """
        return self.transformer(self.ln_pre(tokens), return_attention=return_attention)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class token -> ``ln_post`` -> ``@ proj``: ``(B, N + 1, D) -> (B, output_dim)``."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.cfg.width:
            raise ValueError(f"tokens must have shape (B, N + 1, D={self.cfg.width}), "
                             f"got {tuple(tokens.shape)}")
        return self.ln_post(tokens[:, 0]) @ self.proj

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, output_dim)``, not normalised."""
        return self.pool(self.forward_features(self.embed(self.patchify(images))))
