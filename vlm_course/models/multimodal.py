"""A small multimodal transformer over image and text tokens, with two attention patterns.

Chapter 05 (generative objectives).  One stream of tokens, ``[patch_1 .. patch_N, word_1 ..
word_L]``, runs through the course's :class:`~vlm_course.models.transformer.Transformer` blocks;
what the model may look at is set by the attention mask alone:

* ``mode="full"`` — every token sees every token: the fused encoder of **masked cross-modal
  modelling** (FLAVA's multimodal encoder, Singh et al. 2022; M3AE, Geng et al. 2022).  Masked
  patches are replaced by a learned image mask token (as BEiT/FLAVA do, so the sequence keeps its
  length) and masked words by ``[MASK]``; a pixel head and a word head reconstruct both.
* ``mode="prefix"`` — the image is a prefix seen by everyone (image tokens attend to each other
  freely), and word ``i`` sees the image and words ``<= i``: SimVLM's **PrefixLM** (Wang et al.
  2022) for **captioning**.  With teacher forcing every position predicts the next word in one
  pass; :meth:`MultimodalTransformer.generate` decodes greedily.

Shapes: images ``(B, 3, H, W)``; patches ``(B, N, K)``, ``K = P*P*3``; ``image_mask`` ``(B, N)``
(1/True = masked); ``input_ids`` ``(B, L)`` long; ``attention_mask`` ``(B, L)`` (1 = real token,
0 = padding; padding keys are never attended to); features ``(B, N + L, D)``.
Named stages: ``embed_image``, ``embed_text``, ``attention_pattern``, ``forward_features``,
``predict_pixels``, ``predict_masked_words``, ``predict_next_words``.  The model knows token ids
and its tokenizer's words (``config.vocab``), never the world.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from vlm_course.text import Tokenizer

from .transformer import Transformer
from .vit import patchify

__all__ = ["MultimodalConfig", "MultimodalOutput", "MultimodalTransformer", "attention_pattern",
           "MODES"]

MODES = ("full", "prefix")


@dataclass
class MultimodalConfig:
    """A single-stream image-text transformer (see the module docstring).

    ``vocab``: the tokenizer's words (special tokens excluded); :meth:`tiny` fills ``vocab_size``
    and the special ids in from it.  An empty ``vocab`` leaves the ids to the caller (tests).
    """

    vocab: tuple[str, ...] = ()
    vocab_size: int = 128
    context_length: int = 16
    image_size: int = 48
    patch_size: int = 16
    in_channels: int = 3
    width: int = 64
    layers: int = 3
    heads: int = 4
    mlp_ratio: float = 4.0
    activation: str = "gelu"
    ln_eps: float = 1e-5
    pad_id: int = 0
    sos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        self.vocab = tuple(self.vocab)
        for name in ("vocab_size", "context_length", "image_size", "patch_size", "in_channels",
                     "width", "layers", "heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size must be divisible by patch_size={self.patch_size}, "
                             f"got {self.image_size}")
        for name in ("pad_id", "sos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"{name} must lie in [0, vocab_size={self.vocab_size}), "
                                 f"got {getattr(self, name)}")

    @classmethod
    def tiny(cls, vocab=(), **overrides) -> MultimodalConfig:
        """48x48 images in 16x16 patches (9 tokens: one per ShapeWorld grid cell), context 16,
        width 64, 3 layers, 4 heads; ``vocab`` (a sequence of words) sets ``vocab_size`` and the
        special ids.  Raises ``ValueError`` for a word the tokenizer refuses."""
        cfg = cls(**overrides)
        if vocab:
            tok = Tokenizer(tuple(vocab))
            cfg = dataclasses.replace(cfg, vocab=tuple(tok.to_dict()["words"]),
                                      vocab_size=tok.vocab_size, pad_id=tok.pad_id,
                                      sos_id=tok.sos_id, eos_id=tok.eos_id)
        return cfg

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MultimodalConfig:
        return cls(**d)


def attention_pattern(num_image: int, input_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Boolean "may attend" mask ``(B, 1, N + L, N + L)`` for image-then-text sequences.

    num_image: N, the number of image tokens first in the sequence.
    input_mask: ``(B, L)`` 1 = real text token, 0 = padding (padding keys are blocked).
    mode: ``"full"`` (all pairs) or ``"prefix"`` (image tokens see the image; word ``i`` sees the
        image and words ``0..i``).
    Raises ``ValueError`` for an unknown mode or a mask that is not 2-D.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if input_mask.dim() != 2:
        raise ValueError(f"input_mask must have shape (B, L), got {tuple(input_mask.shape)}")
    B, L = input_mask.shape
    N, T, dev = num_image, num_image + input_mask.shape[1], input_mask.device
    allowed = torch.ones(T, T, dtype=torch.bool, device=dev)
    if mode == "prefix":
        allowed[:N, N:] = False  # the image prefix does not read the caption
        allowed[N:, N:] = torch.ones(L, L, dtype=torch.bool, device=dev).tril()  # causal words
    keys = torch.cat([torch.ones(B, N, dtype=torch.bool, device=dev), input_mask.bool()], dim=1)
    return (allowed[None] & keys[:, None, :])[:, None]  # (B, 1, T, T)


class MultimodalOutput(NamedTuple):
    """``forward``'s result: image features ``(B, N, D)`` and text features ``(B, L, D)``."""

    image: torch.Tensor
    text: torch.Tensor


class MultimodalTransformer(nn.Module):
    """Single-stream image-text transformer for masked cross-modal modelling and captioning."""

    def __init__(self, config: MultimodalConfig):
        super().__init__()
        if not isinstance(config, MultimodalConfig):
            raise TypeError(f"config must be a MultimodalConfig, got {type(config).__name__}")
        self.config = c = config
        D, K = c.width, c.patch_size**2 * c.in_channels
        self.patch_embed = nn.Linear(K, D)
        self.image_pos = nn.Parameter(torch.randn(c.num_patches, D) * 0.02)
        self.image_mask_token = nn.Parameter(torch.randn(D) * 0.02)
        self.token_embedding = nn.Embedding(c.vocab_size, D)
        self.text_pos = nn.Parameter(torch.randn(c.context_length, D) * 0.01)
        self.modality_embedding = nn.Parameter(torch.randn(2, D) * 0.02)  # 0 image, 1 text
        self.ln_pre = nn.LayerNorm(D, eps=c.ln_eps)
        self.transformer = Transformer(D, c.layers, c.heads, c.mlp_ratio, c.activation, c.ln_eps)
        self.ln_final = nn.LayerNorm(D, eps=c.ln_eps)
        self.pixel_head = nn.Linear(D, K)
        self.mlm_head = nn.Linear(D, c.vocab_size)
        self.lm_head = nn.Linear(D, c.vocab_size)
        self.tokenizer = Tokenizer(c.vocab) if c.vocab else None
        if self.tokenizer is not None and self.tokenizer.vocab_size != c.vocab_size:
            raise ValueError(f"config.vocab_size must equal the tokenizer's size "
                             f"{self.tokenizer.vocab_size} for config.vocab, got {c.vocab_size}")
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        for head in (self.pixel_head, self.mlm_head, self.lm_head):  # start from (almost)
            nn.init.normal_(head.weight, std=1e-3)  # "predict 0" / uniform over the words
            nn.init.zeros_(head.bias)

    # ------------------------------------------------------------------ inputs
    def tokenize(self, texts) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` ``(B, context_length)`` long of ``texts``.
        Raises ``ValueError`` when the config has no vocabulary, ``TypeError`` for non-strings."""
        if self.tokenizer is None:
            raise ValueError("config.vocab is empty: this model has no tokenizer")
        enc = self.tokenizer(texts, context_length=self.config.context_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, N, K)``; raises ``ValueError`` for a wrong image shape."""
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(images.shape)}")
        return patchify(images, c.patch_size)

    def embed_image(self, images: torch.Tensor,
                    image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, N, D)``; masked patches (``image_mask`` 1) become the learned
        image mask token before the position embedding is added."""
        x = self.patch_embed(self.patchify(images))  # (B, N, D)
        if image_mask is not None:
            if image_mask.shape != x.shape[:2]:
                raise ValueError(f"image_mask must have shape (B, N) = {tuple(x.shape[:2])}, "
                                 f"got {tuple(image_mask.shape)}")
            m = image_mask.to(x.dtype)[..., None]  # (B, N, 1)
            x = x * (1 - m) + self.image_mask_token.to(x.dtype) * m
        return x + self.image_pos.to(x.dtype) + self.modality_embedding[0].to(x.dtype)

    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B, L, D)``: token + position + text-modality embeddings."""
        c = self.config
        if input_ids.dim() != 2 or input_ids.shape[1] > c.context_length:
            raise ValueError(f"input_ids must have shape (B, L <= {c.context_length}), "
                             f"got {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= c.vocab_size):
            raise ValueError(f"input_ids must lie in [0, vocab_size={c.vocab_size}), got min "
                             f"{int(input_ids.min())}, max {int(input_ids.max())}")
        x = self.token_embedding(input_ids)
        L = input_ids.shape[1]
        return x + self.text_pos[:L].to(x.dtype) + self.modality_embedding[1].to(x.dtype)

    # ------------------------------------------------------------------ the fused encoder
    def forward_features(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
                         attention_mask: torch.Tensor | None = None, mode: str = "full",
                         return_attention: bool = False):
        """Run the blocks on ``[image_tokens, text_tokens]``: ``(B, N, D), (B, L, D) -> (B, N+L,
        D)`` (after ``ln_final``), under :func:`attention_pattern` ``mode``.  With
        ``return_attention=True`` also the per-layer weights ``[(B, h, N+L, N+L)]``."""
        B, N, _ = image_tokens.shape
        if text_tokens.shape[0] != B:
            raise ValueError(f"text_tokens must have batch size B={B}, "
                             f"got {tuple(text_tokens.shape)}")
        L = text_tokens.shape[1]
        if attention_mask is None:
            attention_mask = torch.ones(B, L, dtype=torch.long, device=text_tokens.device)
        elif attention_mask.shape != (B, L):
            raise ValueError(f"attention_mask must have shape (B, L) = ({B}, {L}), "
                             f"got {tuple(attention_mask.shape)}")
        pattern = attention_pattern(N, attention_mask, mode)
        x = self.ln_pre(torch.cat([image_tokens, text_tokens], dim=1))  # (B, N + L, D)
        out = self.transformer(x, attn_mask=pattern, return_attention=return_attention)
        if return_attention:
            return self.ln_final(out[0]), out[1]
        return self.ln_final(out)

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None, mode: str = "full") -> MultimodalOutput:
        """Embed both, fuse, split: returns :class:`MultimodalOutput` ``(image (B, N, D),
        text (B, L, D))``."""
        if images.shape[0] != input_ids.shape[0]:
            raise ValueError(f"images and input_ids must have the same batch size, got "
                             f"{images.shape[0]} and {input_ids.shape[0]}")
        img = self.embed_image(images, image_mask)
        features = self.forward_features(img, self.embed_text(input_ids), attention_mask, mode)
        N = img.shape[1]
        return MultimodalOutput(features[:, :N], features[:, N:])

    # ------------------------------------------------------------------ heads
    def predict_pixels(self, image_features: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) -> (B, N, K)`` pixels of each patch."""
        return self.pixel_head(image_features)

    def predict_masked_words(self, text_features: torch.Tensor) -> torch.Tensor:
        """``(B, L, D) -> (B, L, V)`` logits of the word at each position (masked modelling)."""
        return self.mlm_head(text_features)

    def predict_next_words(self, text_features: torch.Tensor) -> torch.Tensor:
        """``(B, L, D) -> (B, L, V)`` logits of the *next* word (captioning, prefix mode)."""
        return self.lm_head(text_features)

    @torch.no_grad()
    def generate(self, images: torch.Tensor, max_length: int | None = None,
                 image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy captions: ``(B, 3, H, W) -> (B, T)`` ids ``[SOS] w1 .. [EOS] [PAD]..``.

        Starts from ``[SOS]``, appends the arg-max next word under the prefix mask until every
        row produced ``[EOS]`` or ``max_length`` (default ``context_length``) tokens exist; after
        ``[EOS]`` a row is padded.  ``image_mask`` (1 = hidden) can hide image patches, e.g. all
        of them for a text-only baseline.  Raises ``ValueError`` for ``max_length`` outside
        ``[2, context_length]``.
        """
        c = self.config
        T = c.context_length if max_length is None else max_length
        if not 2 <= T <= c.context_length:
            raise ValueError(f"max_length must lie in [2, context_length={c.context_length}], "
                             f"got {T}")
        img = self.embed_image(images, image_mask)
        B = img.shape[0]
        ids = torch.full((B, 1), c.sos_id, dtype=torch.long, device=img.device)
        done = torch.zeros(B, dtype=torch.bool, device=img.device)
        while ids.shape[1] < T and not bool(done.all()):
            feats = self.forward_features(img, self.embed_text(ids), mode="prefix")
            nxt = self.predict_next_words(feats[:, -1]).argmax(dim=-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, c.pad_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done = done | (nxt == c.eos_id)
        return ids
