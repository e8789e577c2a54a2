"""A fusion encoder: text tokens self-attend, then cross-attend to image tokens; an ITM head.

Chapter 06 (alignment objectives) trains it for image-text matching; chapter 07 (frameworks) uses
it as the "two-leg" model.  ALBEF (Li et al. 2021) and BLIP (Li et al. 2022) fuse the two
modalities this way: each fusion block is a pre-norm transformer block with three residual
branches, ``x = x + self_attn(ln_1(x))``, ``x = x + cross_attn(ln_2(x), image)``,
``x = x + mlp(ln_3(x))``: the text tokens talk to each other (bidirectionally, padding masked), then
each text token looks at every image token.  The fused first token (the ``[CLS]`` of BERT; the
course tokenizer's ``[SOS]``) feeds a two-way head: logits of (no match, match).

The encoder is tower-agnostic: it takes image tokens ``(B, N, Di)`` and text tokens ``(B, L, Dt)``
from any towers (a ViT's patch tokens, a ResNet's flattened feature map, CLIP's text token
features) and projects both to its width ``D`` after a LayerNorm.

Shapes: B batch, N image tokens, L text tokens, D width, h heads.  Masks: ``text_mask`` ``(B, L)``
with 1 = real token and 0 = padding (the tokenizer's ``attention_mask``); ``image_mask`` ``(B, N)``
likewise (``None`` = all tokens real).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from .attention import MultiHeadAttention
from .transformer import make_activation

__all__ = ["FusionConfig", "FusionBlock", "FusionEncoder"]


@dataclass
class FusionConfig:
    """A fusion encoder: ``width`` D, ``layers`` blocks of ``heads`` heads; inputs of width
    ``image_dim`` (image tokens) and ``text_dim`` (text tokens)."""

    image_dim: int = 64
    text_dim: int = 64
    width: int = 64
    layers: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    activation: str = "gelu"
    ln_eps: float = 1e-5
    max_text_len: int = 32
    max_image_tokens: int = 65

    def __post_init__(self) -> None:
        for name in ("image_dim", "text_dim", "width", "layers", "heads", "max_text_len",
                     "max_image_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FusionConfig.{name}: expected an int >= 1, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"FusionConfig.width: expected a multiple of heads={self.heads}, "
                             f"got {self.width}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"FusionConfig.mlp_ratio: expected > 0, got {self.mlp_ratio!r}")

    @classmethod
    def tiny(cls, **overrides) -> FusionConfig:
        """64-d inputs, width 64, 2 blocks of 4 heads (~0.13 M parameters)."""
        return replace(cls(), **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FusionConfig:
        return cls(**d)


class FusionBlock(nn.Module):
    """Pre-norm block: self-attention over text, cross-attention to image tokens, MLP.

    ``forward(x (B, L, D), image (B, N, D), self_mask, cross_mask, need_weights)`` returns
    ``(x (B, L, D), self_weights (B, h, L, L) | None, cross_weights (B, h, L, N) | None)``.
    Masks are boolean "may attend" masks broadcastable to ``(B, h, L, L)`` / ``(B, h, L, N)``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, activation: str = "gelu",
                 ln_eps: float = 1e-5):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.ln_1 = nn.LayerNorm(dim, eps=ln_eps)
        self.self_attn = MultiHeadAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim, eps=ln_eps)
        self.cross_attn = MultiHeadAttention(dim, heads)
        self.ln_3 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(dim, hidden)), ("act", make_activation(activation)),
            ("c_proj", nn.Linear(hidden, dim))]))

    def forward(self, x, image, self_mask=None, cross_mask=None, need_weights=False):
        a, w_self = self.self_attn(self.ln_1(x), attn_mask=self_mask, need_weights=need_weights)
        x = x + a
        c, w_cross = self.cross_attn(self.ln_2(x), image, attn_mask=cross_mask,
                                     need_weights=need_weights)
        x = x + c
        return x + self.mlp(self.ln_3(x)), w_self, w_cross


def _key_mask(mask: torch.Tensor | None, name: str, B: int, n: int, device) -> torch.Tensor | None:
    """(B, n) 1/0 -> (B, 1, 1, n) bool "may attend" mask; checks shape, values, a real token."""
    if mask is None:
        return None
    if not torch.is_tensor(mask) or tuple(mask.shape) != (B, n):
        raise ValueError(f"{name}: expected a (B, {'L' if name == 'text_mask' else 'N'}) = "
                         f"({B}, {n}) tensor of 0/1, got "
                         f"{tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__}")
    m = mask.to(device)
    if m.dtype != torch.bool:
        if ((m != 0) & (m != 1)).any():
            raise ValueError(f"{name}: expected values 0 (padding) or 1 (real), got "
                             f"{sorted(set(m.flatten().tolist()))}")
        m = m != 0
    if B and not m.any(dim=1).all():
        rows = (~m.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"{name}: expected at least one real token per row, rows {rows} are "
                         "all padding")
    return m[:, None, None, :]


class FusionEncoder(nn.Module):
    """ALBEF/BLIP-style fusion encoder with an image-text matching head (see module docstring).

    Named stages: ``embed(text_tokens, image_tokens) -> ((B, L, D), (B, N, D))`` (LayerNorm +
    linear projection of each stream); ``forward_features(text_tokens, image_tokens, text_mask,
    image_mask, return_attention=False) -> (B, L, D)`` fused text tokens (with
    ``return_attention=True`` also a list, one ``(self (B, h, L, L), cross (B, h, L, N))`` pair per
    block); ``forward_head(features) -> (B, 2)`` ITM logits (no match, match) from the first
    token; ``forward(...) = forward_head(forward_features(...))``.
    """

    def __init__(self, config: FusionConfig):
        super().__init__()
        if not isinstance(config, FusionConfig):
            raise TypeError(f"config: expected a FusionConfig, got {type(config).__name__}")
        c = self.config = config
        D = c.width
        self.ln_image = nn.LayerNorm(c.image_dim, eps=c.ln_eps)
        self.image_proj = nn.Linear(c.image_dim, D)
        self.ln_text = nn.LayerNorm(c.text_dim, eps=c.ln_eps)
        self.text_proj = nn.Linear(c.text_dim, D)
        self.text_pos = nn.Parameter(0.02 * torch.randn(c.max_text_len, D))
        self.image_pos = nn.Parameter(0.02 * torch.randn(c.max_image_tokens, D))
        self.blocks = nn.ModuleList(FusionBlock(D, c.heads, c.mlp_ratio, c.activation, c.ln_eps)
                                    for _ in range(c.layers))
        self.ln_final = nn.LayerNorm(D, eps=c.ln_eps)
        self.itm_head = nn.Linear(D, 2)
        std = D ** -0.5
        for block in self.blocks:
            for attn in (block.self_attn, block.cross_attn):
                nn.init.normal_(attn.in_proj_weight, std=std)
                nn.init.normal_(attn.out_proj.weight, std=std * (2 * c.layers) ** -0.5)

    def _check(self, text_tokens, image_tokens) -> None:
        c = self.config
        for name, t, width in (("text_tokens", text_tokens, c.text_dim),
                               ("image_tokens", image_tokens, c.image_dim)):
            if not torch.is_tensor(t) or not t.is_floating_point() or t.dim() != 3 \
                    or t.shape[-1] != width or t.shape[1] == 0:
                what = (f"{t.dtype} {tuple(t.shape)}" if torch.is_tensor(t)
                        else type(t).__name__)
                raise ValueError(f"{name}: expected a float (B, {'L' if name[0] == 't' else 'N'}"
                                 f" >= 1, {width}) tensor, got {what}")
        for name, n, most in (("text_tokens", text_tokens.shape[1], c.max_text_len),
                              ("image_tokens", image_tokens.shape[1], c.max_image_tokens)):
            if n > most:
                raise ValueError(f"{name}: expected at most {most} tokens (FusionConfig."
                                 f"max_{'text_len' if name[0] == 't' else 'image_tokens'}), "
                                 f"got {n}")
        if text_tokens.shape[0] != image_tokens.shape[0]:
            raise ValueError(f"text_tokens and image_tokens: expected the same batch size B, got "
                             f"{text_tokens.shape[0]} and {image_tokens.shape[0]}")

    def embed(self, text_tokens: torch.Tensor, image_tokens: torch.Tensor):
        """Project both streams to width D and add the fusion's own position embeddings:
        ``((B, L, D), (B, N, D))``."""
        self._check(text_tokens, image_tokens)
        L, N = text_tokens.shape[1], image_tokens.shape[1]
        return (self.text_proj(self.ln_text(text_tokens)) + self.text_pos[:L],
                self.image_proj(self.ln_image(image_tokens)) + self.image_pos[:N])

    def forward_features(self, text_tokens: torch.Tensor, image_tokens: torch.Tensor,
                         text_mask: torch.Tensor | None = None,
                         image_mask: torch.Tensor | None = None, return_attention: bool = False):
        """Fused text tokens ``(B, L, D)`` after ``ln_final`` (see the class docstring).

        Raises ValueError for wrong shapes, mismatched batches or masks that are not 0/1 with a
        real token in every row.
        """
        x, image = self.embed(text_tokens, image_tokens)
        B, L, _ = x.shape
        self_mask = _key_mask(text_mask, "text_mask", B, L, x.device)
        cross_mask = _key_mask(image_mask, "image_mask", B, image.shape[1], x.device)
        maps = []
        for block in self.blocks:
            x, w_self, w_cross = block(x, image, self_mask, cross_mask, return_attention)
            maps.append((w_self, w_cross))
        x = self.ln_final(x)
        return (x, maps) if return_attention else x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """ITM logits ``(B, 2)`` (index 1 = match) from the first fused token of
        ``(B, L, D)``."""
        D = self.config.width
        if not torch.is_tensor(features) or features.dim() != 3 or features.shape[-1] != D:
            raise ValueError(f"features: expected a (B, L, {D}) tensor, got "
                             f"{tuple(features.shape) if torch.is_tensor(features) else features}")
        return self.itm_head(features[:, 0])

    def forward(self, text_tokens, image_tokens, text_mask=None, image_mask=None) -> torch.Tensor:
        """``(B, 2)`` ITM logits; ``logits.softmax(-1)[:, 1]`` is the match probability."""
        return self.forward_head(self.forward_features(text_tokens, image_tokens, text_mask,
                                                       image_mask))
