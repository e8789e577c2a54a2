"""Vision Transformer (CLIP variant): patches -> tokens -> transformer -> class-token embedding.

Chapter 02 (network architectures).  Dosovitskiy et al. 2021 cut an image into P x P patches,
embed each linearly, prepend a learnable class token and add learnable position embeddings.
CLIP (Radford et al. 2021) adds a LayerNorm *before* the encoder (``ln_pre``; the survey's
"normalization layer before the transformer encoder"), uses pre-norm blocks, normalises the class
token at the end (``ln_post``) and maps it with a bias-free projection ``proj``.

Shapes: images ``(B, C, H, W)`` float, ``H`` and ``W`` multiples of P (not necessarily equal:
``ViTConfig(image_size=(H, W))``); patches ``(B, N, P*P*C)`` with ``N = (H/P) * (W/P)`` in row-major
order and each patch flattened as ``(row, column, channel)``; tokens ``(B, 1 + N, D)`` (class token
first); output ``(B, output_dim)``, not normalised.
Parameter names follow OpenCLIP's ``VisionTransformer`` except ``patch_embed`` (a Linear on
patchified pixels, equal to OpenCLIP's stride-P ``conv1`` with its weight permuted).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .image_size import as_hw, normalise_size
from .transformer import Transformer

__all__ = ["patchify", "unpatchify", "ViTConfig", "VisionTransformer"]


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, N, P*P*C)``: non-overlapping P x P patches, row-major, channels last.

    Raises ValueError when ``images`` is not 4-D or H or W is not a multiple of ``patch_size``.
    """
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


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3,
               grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, P*P*C) -> (B, C, gh*P, gw*P)``.

    ``grid = (gh, gw)`` with ``gh * gw = N``; ``None`` means a square grid.  Raises ValueError when
    ``patches`` is not ``(B, N, P*P*C)`` or N does not fit the grid.
    """
    if patches.dim() != 3:
        raise ValueError("patches must have shape (B, N, P*P*C) (3 dims), "
                         f"got {tuple(patches.shape)}")
    B, N, K = patches.shape
    P, C = patch_size, channels
    if grid is None:
        g = int(round(N**0.5))
        if g * g != N:
            raise ValueError(f"patches must have shape (B, N=g*g, P*P*C={P * P * C}) for a square "
                             f"grid (pass grid=(gh, gw) otherwise), got {tuple(patches.shape)}")
        grid = (g, g)
    gh, gw = grid
    if gh * gw != N or K != P * P * C:
        raise ValueError(f"patches must have shape (B, N={gh}*{gw}, P*P*C={P * P * C}), "
                         f"got {tuple(patches.shape)}")
    x = patches.reshape(B, gh, gw, P, P, C).permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, P, gw, P)
    return x.reshape(B, C, gh * P, gw * P)


@dataclass
class ViTConfig:
    """A CLIP-style ViT.  ``image_size``: an int (square) or ``(H, W)``; both multiples of
    ``patch_size``.  ``activation``: ``"gelu"`` or ``"quick_gelu"`` (OpenAI CLIP weights)."""

    image_size: int | tuple[int, int] = 64
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

    def __post_init__(self):
        self.image_size = normalise_size(self.image_size, "image_size")

    @classmethod
    def tiny(cls, **overrides) -> ViTConfig:
        """64x64 images, 8x8 patches (64 tokens + class), width 64, 2 layers, 64-d output."""
        return replace(cls(layers=2), **overrides)

    @property
    def image_hw(self) -> tuple[int, int]:
        """``(H, W)`` of the images the position embeddings are built for."""
        return as_hw(self.image_size)

    @property
    def grid(self) -> tuple[int, int]:
        """``(H / P, W / P)``: patch rows and columns."""
        H, W = self.image_hw
        return H // self.patch_size, W // self.patch_size

    @property
    def grid_size(self) -> int:
        """Side of a square patch grid.  Raises ValueError for a non-square grid (use ``grid``)."""
        gh, gw = self.grid
        if gh != gw:
            raise ValueError(f"grid_size needs a square grid, got grid={self.grid}; use cfg.grid")
        return gh

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid
        return gh * gw


class VisionTransformer(nn.Module):
    """CLIP's image tower, with named stages a notebook can call one at a time.

    The image-tower API shared with :class:`~vlm_course.models.resnet.ResNet`
    (see :mod:`vlm_course.models.towers`):

    * ``forward_features(images) -> (B, 1 + N, D)``: tokens after the blocks (no final norm);
    * ``forward_head(features) -> (B, output_dim)``: ``ln_post`` on the class token, ``@ proj``;
    * ``forward(images) = forward_head(forward_features(images))``.

    ``forward_features`` itself is ``forward_tokens(embed(patchify(images)))`` and ``embed`` is
    ``prepend_class_token(add_position(embed_patches(patches)))``.  Masked image modelling (MAE,
    chapter 05) adds position embeddings *before* dropping patches and the class token *after*::

        x = vit.add_position(vit.embed_patches(vit.patchify(images)))   # (B, N, D)
        kept = ...                                                     # (B, n, D), n <= N
        tokens = vit.forward_tokens(vit.prepend_class_token(kept))      # (B, 1 + n, D)

    ``pos_embed`` is the ``(1 + N, D)`` position table (row 0 belongs to the class token).
    With ``return_attention=True`` a stage returns ``(output, attentions)``, ``attentions`` a list
    of ``(B, h, 1 + N, 1 + N)`` weights, one per block (the head has none: ``[]``).

    Raises TypeError when ``cfg`` is not a :class:`ViTConfig`; ValueError when the image size is
    not a multiple of the patch size.
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if not isinstance(cfg, ViTConfig):
            raise TypeError(f"cfg must be a ViTConfig, got {type(cfg).__name__}")
        H, W = cfg.image_hw
        if H % cfg.patch_size or W % cfg.patch_size:
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

    @property
    def pos_embed(self) -> torch.Tensor:
        """The ``(1 + N, D)`` position embeddings; row 0 is the class token's."""
        return self.positional_embedding

    # ---------------------------------------------------------------- stem stages
    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, N, P*P*C)`` with the configured patch size.

        Raises ValueError unless ``images`` is ``(B, in_channels, H, W)`` with the configured
        ``(H, W)`` (the position embeddings fix the grid).
        """
        c = self.cfg
        H, W = c.image_hw
        if images.dim() != 4 or images.shape[1] != c.in_channels:
            raise ValueError(
                f"images must have shape (B, C={c.in_channels}, H, W), got {tuple(images.shape)}"
            )
        patches = patchify(images, c.patch_size)  # raises if H or W is not divisible by P
        if tuple(images.shape[-2:]) != (H, W):
            raise ValueError(
                f"images must have shape (B, {c.in_channels}, {H}, {W}) "
                f"(the position embeddings fix the grid), got {tuple(images.shape)}"
            )
        return patches

    def embed_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Linear patch embedding, no position: ``(B, N, P*P*C) -> (B, N, D)``.

        Raises ValueError unless ``patches`` is ``(B, N, P*P*C)``.
        """
        K = self.cfg.patch_size**2 * self.cfg.in_channels
        if patches.dim() != 3 or patches.shape[-1] != K:
            raise ValueError(f"patches must have shape (B, N, P*P*C={K}), "
                             f"got {tuple(patches.shape)}")
        return self.patch_embed(patches)

    def add_position(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens plus their position embeddings: ``(B, N, D) -> (B, N, D)``.

        Raises ValueError unless ``tokens`` is ``(B, N, D)`` with the configured N and D.
        """
        c = self.cfg
        if tokens.dim() != 3 or tuple(tokens.shape[1:]) != (c.num_patches, c.width):
            raise ValueError(f"tokens must have shape (B, N={c.num_patches}, D={c.width}), "
                             f"got {tuple(tokens.shape)}")
        return tokens + self.positional_embedding[1:].to(tokens.dtype)

    def prepend_class_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class embedding (+ its position embedding) in front: ``(B, n, D) -> (B, 1 + n, D)``.

        ``n`` may be smaller than N (the tokens an MAE encoder keeps).  Raises ValueError unless
        ``tokens`` is ``(B, n, D)``.
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.cfg.width:
            raise ValueError(f"tokens must have shape (B, n, D={self.cfg.width}), "
                             f"got {tuple(tokens.shape)}")
        cls = (self.class_embedding + self.positional_embedding[0]).to(tokens.dtype)
        return torch.cat([cls.expand(tokens.shape[0], 1, -1), tokens], dim=1)  # (B, 1 + n, D)

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, N, P*P*C) -> (B, 1 + N, D)``: patch embedding, positions, class token first.

        Raises ValueError unless ``patches`` is ``(B, N, P*P*C)`` with the configured N.
        """
        c = self.cfg
        K = c.patch_size**2 * c.in_channels
        if patches.dim() != 3 or tuple(patches.shape[1:]) != (c.num_patches, K):
            raise ValueError(
                f"patches must have shape (B, N={c.num_patches}, P*P*C={K}), "
                f"got {tuple(patches.shape)}"
            )
        return self.prepend_class_token(self.add_position(self.embed_patches(patches)))

    def forward_tokens(self, tokens: torch.Tensor, return_attention: bool = False):
        """``ln_pre`` then the blocks: ``(B, n, D) -> (B, n, D)`` (no final norm).

        Raises ValueError unless ``tokens`` is ``(B, n, D)``.
        """
        return self.transformer(self.ln_pre(tokens), return_attention=return_attention)

    # ---------------------------------------------------------------- the tower API
    def forward_features(self, images: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, 1 + N, D)`` tokens after the blocks (class token first).

        With ``return_attention=True``: ``(tokens, [(B, h, 1 + N, 1 + N)] * layers)``.
        Raises ValueError for images of the wrong shape (see :meth:`patchify`).
        """
        return self.forward_tokens(self.embed(self.patchify(images)), return_attention)

    def forward_head(self, features: torch.Tensor, return_attention: bool = False):
        """Class token -> ``ln_post`` -> ``@ proj``: ``(B, 1 + N, D) -> (B, output_dim)``.

        With ``return_attention=True``: ``(output, [])`` (the head has no attention).
        Raises ValueError unless ``features`` is ``(B, 1 + N, D)``.
        """
        if features.dim() != 3 or features.shape[-1] != self.cfg.width:
            raise ValueError(f"features must have shape (B, 1 + N, D={self.cfg.width}), "
                             f"got {tuple(features.shape)}")
        out = self.ln_post(features[:, 0]) @ self.proj
        return (out, []) if return_attention else out

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, output_dim)``, not normalised.

        With ``return_attention=True``: ``(output, attentions)`` of every block.
        Raises ValueError for images of the wrong shape.
        """
        if not return_attention:
            return self.forward_head(self.forward_features(images))
        features, maps = self.forward_features(images, return_attention=True)
        return self.forward_head(features), maps
