"""Visual prompt tuning: VPT shallow and deep (chapter 10).

Jia et al. 2022 ("Visual prompt tuning") adapt a frozen Vision Transformer by prepending a few
learnable tokens to its input sequence.  Attention lets every patch token and the class token read
from the prompts, so a handful of vectors can steer the whole image representation, while the
backbone's weights never change.

* **VPT-shallow**: P prompt tokens are inserted once, right after the class token, into the input
  of the first block: ``[CLS] p_1..p_P x_1..x_N``.
* **VPT-deep**: every block ``i`` gets its own P prompts: the P outputs of block ``i - 1`` at the
  prompt positions are *replaced* by the new learnable prompts of block ``i``.

The head (``ln_post`` on the class token and the projection) is unchanged, and the classifier is
the frozen zero-shot text classifier of the hand-written prompt, so with P = 0 VPT *is* the base
model (tested).  Prompts are initialised uniformly in ``[-v, v]``, ``v = sqrt(6 / (3 P_s^2 + D))``
(Xavier for the patch embedding's fan-in and fan-out, as the paper does; ``P_s`` the patch size).

Shapes: B batch, N patches, P prompt tokens, D ViT width.  Needs a ViT image tower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .frozen import DEFAULT_TEMPLATES, FrozenVLM
from .internals import image_blocks, image_head, image_pre, image_tokens, run_block, vit_tower

__all__ = ["VPTConfig", "VPT"]


@dataclass
class VPTConfig:
    """``n_tokens`` prompt tokens (0 = the base model), ``deep`` for one set per block."""

    n_tokens: int = 8
    deep: bool = False
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    @classmethod
    def tiny(cls) -> VPTConfig:
        return cls(n_tokens=2)


class VPT(FrozenVLM):
    """VPT (Jia et al. 2022, ECCV; chapter 10) on the frozen ViT of a VLM.

    ``VPT(model, classnames, VPTConfig(n_tokens=8, deep=False))``; trainable: ``prompts``
    (layers, P, D) — ``layers`` is 1 for shallow, the number of blocks for deep.
    ``encode_image(images (B, 3, H, W)) -> (B, E)`` unit rows, ``forward(images) -> (B, K)``
    ``= scale * encode_image(images) @ text_weights.T``.
    Raises TypeError for a model without a ViT image tower, ValueError for a negative
    ``n_tokens`` or a bad image tensor.
    """

    def __init__(self, model, classnames: Sequence[str], config: VPTConfig | None = None):
        self_config = VPTConfig() if config is None else config
        super().__init__(model, classnames, self_config.templates)
        self.config = self_config
        tower = vit_tower(model)
        P = self_config.n_tokens
        if isinstance(P, bool) or not isinstance(P, int) or P < 0:
            raise ValueError(f"n_tokens must be an int >= 0, got {P!r}")
        D, patch = tower.cfg.width, tower.cfg.patch_size
        layers = len(image_blocks(model)) if self_config.deep else 1
        v = math.sqrt(6.0 / (3 * patch * patch + D))
        self.prompts = nn.Parameter(torch.empty(layers, P, D).uniform_(-v, v).to(self.device))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float -> (B, E) unit rows, through the ViT with the prompts inserted."""
        if not torch.is_tensor(images) or images.dim() != 4:
            raise ValueError("images must be a float tensor (B, 3, H, W), got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        x = image_tokens(self.vlm, images)  # (B, 1 + N, D)
        B, P = x.shape[0], self.prompts.shape[1]
        prompts = self.prompts.to(x.dtype)

        def with_prompts(tokens: torch.Tensor, layer: int, replace: bool) -> torch.Tensor:
            rest = tokens[:, 1 + P:] if replace else tokens[:, 1:]  # drop old prompts if deep
            return torch.cat([tokens[:, :1], prompts[layer].expand(B, P, -1), rest], dim=1)

        x = image_pre(self.vlm, with_prompts(x, 0, replace=False))  # (B, 1 + P + N, D)
        for i, block in enumerate(image_blocks(self.vlm)):
            if self.config.deep and i > 0:
                x = with_prompts(x, i, replace=True)
            x = run_block(block, x)
        return image_head(self.vlm, x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.encode_image(images) @ self.text_weights.T
