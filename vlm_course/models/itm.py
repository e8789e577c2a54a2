"""An image-text matching model: CLIP's two towers feed a fusion encoder with an ITM head.

Chapter 06 (alignment objectives).  ALBEF (Li et al. 2021) and BLIP (Li et al. 2022) put a
fusion encoder (:mod:`vlm_course.models.fusion`) on top of an image tower and a text tower and
train a binary "does this caption describe this image?" head on the fused ``[CLS]`` token, with
negatives chosen by the contrastive similarity of the towers (chapter 06's hard negatives).

Here the towers are a CLIP (chapter 04): its image tower's ``forward_features`` (a ViT's
``(B, 1 + N, D)`` tokens after the blocks, or a ResNet's ``(B, C, H', W')`` map read as ``H' W'``
tokens) and its text tower's token features ``(B, L, D)`` are the fusion encoder's inputs, and
CLIP's own embeddings stay available through the VLM interface (``tokenize``, ``encode_image``,
``encode_text``, ``logit_scale``) for the contrastive similarity that picks hard negatives.
``freeze_towers=True`` (the course's shipped ITM models) keeps CLIP fixed: only the fusion encoder
learns, so any gain over CLIP comes from fusion alone.

The methods that reach into the towers' stages (:meth:`ITMModel.image_tokens`,
:meth:`ITMModel.text_tokens`, :meth:`ITMModel.towers`) are the only places that know their names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .clip import CLIP, CLIPConfig
from .fusion import FusionConfig, FusionEncoder

__all__ = ["ITMConfig", "ITMModel", "tower_width"]


def tower_width(clip: CLIPConfig) -> int:
    """Width of the image tower's ``forward_features``: a ViT's token width, a ResNet's channels."""
    vision = clip.vision
    return vision.width if clip.image_tower == "vit" else vision.feature_dim


@dataclass
class ITMConfig:
    """A CLIP (``clip``) plus a fusion encoder (``fusion``; its ``image_dim``/``text_dim`` must be
    the towers' widths, :meth:`for_clip` fills them in).  ``freeze_towers``: keep CLIP's
    parameters fixed (no gradients, eval mode)."""

    clip: CLIPConfig
    fusion: FusionConfig = field(default_factory=FusionConfig.tiny)
    freeze_towers: bool = True

    @classmethod
    def for_clip(cls, clip: CLIPConfig, freeze_towers: bool = True, **fusion) -> ITMConfig:
        """A width-64, 2-block fusion encoder (``fusion`` overrides) sized for ``clip``'s towers."""
        return cls(clip=clip, fusion=FusionConfig.tiny(**{"image_dim": tower_width(clip),
                                                           "text_dim": clip.text.width,
                                                           **fusion}),
                   freeze_towers=freeze_towers)

    @classmethod
    def tiny(cls, vocab) -> ITMConfig:
        """Chapter 04's tiny CLIP (vocabulary ``vocab``) and a tiny fusion encoder."""
        return cls.for_clip(CLIPConfig.tiny(vocab))

    def to_dict(self) -> dict:
        return {"clip": self.clip.to_dict(), "fusion": asdict(self.fusion),
                "freeze_towers": self.freeze_towers}

    @classmethod
    def from_dict(cls, d: dict) -> ITMConfig:
        """Inverse of :meth:`to_dict`.  Raises ValueError (via the configs) for bad fields."""
        return cls(clip=CLIPConfig.from_dict(d["clip"]), fusion=FusionConfig(**d["fusion"]),
                   freeze_towers=bool(d.get("freeze_towers", True)))


class ITMModel(nn.Module):
    """CLIP towers + :class:`~vlm_course.models.fusion.FusionEncoder` (see module docstring).

    Stages: ``image_tokens(images) -> (B, 1 + N, Di)``, ``text_tokens(tokens) -> ((B, L, Dt),
    mask (B, L))``, ``fuse(image_tokens, text_tokens, text_mask) -> (B, 2)`` ITM logits;
    ``forward(images, tokens) -> (B, 2)`` runs all three; ``match_probability(images, texts)
    -> (B,)`` is the probability of "match" for aligned pairs (a Winoground scorer).
    ``forward(images, tokens, image_index, text_index)`` scores any pairs of a batch of images
    and a batch of captions (positives and sampled negatives in one call).
    """

    def __init__(self, config: ITMConfig, tokenizer=None):
        super().__init__()
        if not isinstance(config, ITMConfig):
            raise TypeError(f"config: expected an ITMConfig, got {type(config).__name__}")
        c = self.config = config
        if c.fusion.image_dim != tower_width(c.clip):
            raise ValueError(f"config.fusion.image_dim: expected the image tower's width "
                             f"{tower_width(c.clip)}, got {c.fusion.image_dim}")
        if c.fusion.text_dim != c.clip.text.width:
            raise ValueError(f"config.fusion.text_dim: expected the text tower's width "
                             f"{c.clip.text.width}, got {c.fusion.text_dim}")
        self.clip = CLIP(c.clip, tokenizer=tokenizer)
        self.fusion = FusionEncoder(c.fusion)
        if c.freeze_towers:
            self.clip.requires_grad_(False)

    def train(self, mode: bool = True) -> ITMModel:
        """Frozen towers stay in eval mode (as a fixed feature extractor) whatever ``mode``."""
        super().train(mode)
        if self.config.freeze_towers:
            self.clip.eval()
        return self

    # ------------------------------------------------------------------ the VLM interface (CLIP)
    @property
    def device(self) -> torch.device:
        return self.clip.device

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.clip.tokenize(texts)

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.clip.encode_image(images, normalize=normalize)

    def encode_text(self, tokens, normalize: bool = True) -> torch.Tensor:
        return self.clip.encode_text(tokens, normalize=normalize)

    # ------------------------------------------------------------------ tower tokens
    def _image_features(self, images: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(images) or not images.is_floating_point():
            raise TypeError(f"images: expected a float tensor (B, 3, H, W), got "
                            f"{getattr(images, 'dtype', type(images).__name__)}")
        return self.clip.visual.forward_features(images.to(self.device))

    @staticmethod
    def _as_tokens(features: torch.Tensor) -> torch.Tensor:
        if features.dim() == 4:                         # a ResNet map: one token per position
            return features.flatten(2).transpose(1, 2)  # (B, C, H', W') -> (B, H'W', C)
        return features

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] -> the image tower's tokens ``(B, N, Di)``: a ViT's
        ``(B, 1 + N, D)`` after its blocks (class token first, no ``ln_post``) or a ResNet's
        feature map read as tokens.  Raises TypeError for non-float images."""
        return self._as_tokens(self._image_features(images))

    def text_tokens(self, tokens) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens from :meth:`tokenize` -> the text tower's token features ``(B, L', Dt)`` (after
        ``ln_final``) and the ``attention_mask`` ``(B, L')`` (1 = real, 0 = padding), with
        ``L'`` the longest caption's length: trailing padding is cut (under the causal mask it
        changes nothing).  Raises TypeError unless ``tokens`` is a dict with ``input_ids`` and
        ``attention_mask``."""
        if not (hasattr(tokens, "__getitem__") and "input_ids" in tokens
                and "attention_mask" in tokens):
            raise TypeError(f"tokens: expected the dict returned by tokenize(), got "
                            f"{type(tokens).__name__}")
        mask = tokens["attention_mask"].to(self.device)
        length = max(int(mask.sum(dim=1).max()), 1) if mask.numel() else mask.shape[1]
        ids, mask = tokens["input_ids"].to(self.device)[:, :length], mask[:, :length]
        text = self.clip.text
        return text.forward_features(text.embed(ids)), mask

    def towers(self, images: torch.Tensor, tokens) -> dict[str, torch.Tensor]:
        """One pass through both towers: ``image_tokens`` (B, N, Di), ``text_tokens``
        (B, L, Dt), ``text_mask`` (B, L), and CLIP's L2-normalised embeddings ``image_emb`` and
        ``text_emb`` (B, D) pooled from those same tokens (as ``encode_image``/``encode_text``)."""
        features = self._image_features(images)
        text_tokens, text_mask = self.text_tokens(tokens)
        ids = tokens["input_ids"].to(self.device)[:, :text_mask.shape[1]]
        eot = self.clip.text.eot_positions(ids, text_mask, tokens.get("eot_index"))
        return {"image_tokens": self._as_tokens(features), "text_tokens": text_tokens,
                "text_mask": text_mask,
                "image_emb": F.normalize(self.clip.visual.forward_head(features), dim=-1),
                "text_emb": F.normalize(self.clip.text.pool(text_tokens, eot), dim=-1)}

    # ------------------------------------------------------------------ matching
    def fuse(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
             text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ITM logits ``(B, 2)`` (index 1 = match) of aligned image and text tokens."""
        return self.fusion(text_tokens, image_tokens, text_mask)

    def forward(self, images: torch.Tensor, tokens, image_index: torch.Tensor | None = None,
                text_index: torch.Tensor | None = None) -> torch.Tensor:
        """ITM logits ``(P, 2)`` (index 1 = match) of the pairs (``images[image_index[p]]``,
        caption ``text_index[p]`` of ``tokens``); without indices the aligned pairs ``b, b``
        (then images and captions must be equally many).  Both towers run once; the fusion
        encoder runs on the P pairs.  Raises ValueError for indices out of range or of different
        lengths.
        """
        image_tokens = self.image_tokens(images)
        words, mask = self.text_tokens(tokens)
        B, C = image_tokens.shape[0], words.shape[0]
        if image_index is None and text_index is None:
            if B != C:
                raise ValueError(f"tokens: expected one caption per image ({B}) when no pair "
                                 f"indices are given, got {C}")
            return self.fuse(image_tokens, words, mask)
        for name, idx, n in (("image_index", image_index, B), ("text_index", text_index, C)):
            if not torch.is_tensor(idx) or idx.dim() != 1 or idx.dtype.is_floating_point:
                raise ValueError(f"{name}: expected a 1-D integer tensor, got "
                                 f"{getattr(idx, 'shape', type(idx).__name__)}")
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
                raise ValueError(f"{name}: expected indices in [0, {n}), got "
                                 f"{int(idx.min())}..{int(idx.max())}")
        if image_index.shape != text_index.shape:
            raise ValueError(f"image_index and text_index: expected the same length, got "
                             f"{tuple(image_index.shape)} and {tuple(text_index.shape)}")
        i, t = image_index.to(self.device), text_index.to(self.device)
        return self.fuse(image_tokens[i], words[t], mask[t])

    @torch.no_grad()
    def match_probability(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """``(B,)`` probability that caption ``b`` describes image ``b`` (eval mode, no grad)."""
        if isinstance(texts, str) or len(texts) != images.shape[0]:
            raise ValueError(f"texts: expected a list of {images.shape[0]} captions (one per "
                             f"image), got {texts!r:.80}")
        was = self.training
        self.eval()
        try:
            return self(images, self.tokenize(list(texts))).float().softmax(-1)[:, 1]
        finally:
            self.train(was)
