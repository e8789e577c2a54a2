"""CLIP: a two-tower vision-language model trained with the symmetric image–text contrastive loss.

Chapter 04 (contrastive objectives); Radford et al. 2021, "Learning transferable visual models
from natural language supervision".  Two encoders from chapter 02 map an image and a caption into
one ``D``-dimensional space where matching pairs have a high cosine similarity:

* image tower: :class:`~vlm_course.models.vit.VisionTransformer` (class token, ``ln_pre``,
  bias-free projection) or :class:`~vlm_course.models.resnet.ResNet` with CLIP's attention pooling;
* text tower: :class:`~vlm_course.models.text_encoder.TextEncoder` (causal transformer pooled at
  ``[EOS]``, bias-free ``text_projection``).

The projections into the joint space are the towers' own final maps (``VisionTransformer.proj``,
the attention pool's output projection, ``TextEncoder.text_projection``), built with
``output_dim = embed_dim``.  ``logit_scale`` is a learnable **log-space** scalar initialised at
``log(1 / 0.07)``; the training loop clamps it to ``<= log(100)`` after every step (never here).

The VLM interface shared by every model of the course (COURSE_DESIGN §3):
``tokenize(list[str])`` -> token dict, ``encode_image(images (B,3,H,W) float in [0,1]) -> (B, D)``,
``encode_text(tokens) -> (B, D)`` — both L2-normalised unless ``normalize=False`` — and
``logit_scale``.  ``forward(images, tokens)`` returns ``(image_emb, text_emb, logit_scale)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import ResNetConfig
from .text_encoder import TextConfig, TextEncoder
from .towers import IMAGE_TOWERS as IMAGE_TOWER_TYPES
from .towers import build_image_tower, tower_name
from .vit import ViTConfig

__all__ = ["CLIPConfig", "CLIP"]

IMAGE_TOWERS = ("vit", "resnet")


def _tokenizer(vocab: tuple[str, ...]):
    from vlm_course.text import Tokenizer

    return Tokenizer(vocab)


@dataclass
class CLIPConfig:
    """A two-tower CLIP.  ``vision.output_dim`` and ``text.output_dim`` must equal ``embed_dim``;
    ``text.vocab_size`` must equal the size of the tokenizer built from ``vocab`` (the words after
    the special tokens, :meth:`vlm_course.text.Tokenizer.to_dict`); :meth:`build` fills both in.
    The architecture presets (:meth:`tiny`, :meth:`tiny_resnet`, :meth:`small`) take the vocabulary
    as an argument; the config knows nothing about ShapeWorld, whose presets (vocabulary, world,
    training recipe) live in :mod:`vlm_course.recipes.clip`."""

    embed_dim: int = 64
    image_tower: str | None = None      # "vit" / "resnet"; None: follows the type of ``vision``
    vision: ViTConfig | ResNetConfig = field(default_factory=ViTConfig)
    text: TextConfig = field(default_factory=TextConfig)
    vocab: tuple[str, ...] = ()         # the tokenizer's words (special tokens excluded)
    init_logit_scale: float = math.log(1 / 0.07)

    def __post_init__(self):
        if self.image_tower is None:
            self.image_tower = tower_name(self.vision)

    @classmethod
    def build(cls, embed_dim: int, vision, text: TextConfig, vocab, *,
              image_tower: str | None = None) -> CLIPConfig:
        """Fill in the towers' ``output_dim``, the text tower's ``vocab_size`` and ``eos_id`` from
        ``vocab`` (a sequence of words).

        Raises:
            ValueError: ``vocab`` is empty or holds something that is not a lower-case word.
        """
        vocab = tuple(vocab)
        if not vocab:
            raise ValueError("vocab must be a non-empty sequence of words, got an empty one")
        tok = _tokenizer(vocab)
        return cls(embed_dim=embed_dim, image_tower=image_tower,
                   vision=dataclasses.replace(vision, output_dim=embed_dim),
                   text=dataclasses.replace(text, output_dim=embed_dim, vocab_size=tok.vocab_size,
                                            eos_id=tok.eos_id),
                   vocab=tuple(tok.to_dict()["words"]))

    @classmethod
    def tiny(cls, vocab) -> CLIPConfig:
        """CPU preset (~0.23 M parameters, under 1 MB): 48x48 images, ViT patch 8 (36 patches)
        width 64 × 2 layers, text width 64 × 2 layers with context 24, 64-d joint space."""
        return cls.build(64, ViTConfig(image_size=48, patch_size=8, width=64, layers=2, heads=4),
                         TextConfig(width=64, layers=2, heads=4, context_length=24), vocab)

    @classmethod
    def tiny_resnet(cls, vocab) -> CLIPConfig:
        """CPU preset with the ResNet-D + attention-pooling image tower (64x64 images)."""
        return cls.build(64, ResNetConfig.tiny(image_size=64), TextConfig.tiny(), vocab,
                         image_tower="resnet")

    @classmethod
    def small(cls, vocab) -> CLIPConfig:
        """GPU preset (~10 M parameters): 64x64 images, ViT patch 8 width 256 × 6 layers,
        text width 256 × 6 layers, 256-d joint space."""
        return cls.build(256, ViTConfig(image_size=64, patch_size=8, width=256, layers=6, heads=8),
                         TextConfig(width=256, layers=6, heads=8, context_length=32), vocab)

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists); inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CLIPConfig:
        """Rebuild a config saved by :meth:`to_dict` (e.g. from a checkpoint card).

        Raises:
            ValueError: an unknown ``image_tower``, or no ``vocab`` (a card written before the
                config held its vocabulary: see ``vlm_course.recipes.clip.migrate_card``).
        """
        d = dict(d)
        tower = d.get("image_tower", "vit")
        if tower not in IMAGE_TOWERS:
            raise ValueError(f"image_tower must be one of {IMAGE_TOWERS}, got {tower!r}")
        vision = dict(d["vision"])
        if tower == "resnet":
            vision["layers"] = tuple(vision["layers"])
        d["vision"] = (ViTConfig if tower == "vit" else ResNetConfig)(**vision)
        d["text"] = TextConfig(**d["text"])
        if "vocab" not in d:
            raise ValueError("d lacks 'vocab' (the tokenizer's words); a config written before "
                             "CLIPConfig held its vocabulary stored shapes/colours instead: "
                             "rebuild it with vlm_course.recipes.clip.migrate_card")
        d["vocab"] = tuple(d["vocab"])
        return cls(**d)


class CLIP(nn.Module):
    """Two-tower CLIP (see the module docstring).  ``CLIP(CLIPConfig.tiny())``."""

    def __init__(self, config: CLIPConfig, tokenizer=None):
        """``tokenizer``: a :class:`vlm_course.text.Tokenizer` to use instead of
        ``Tokenizer(config.vocab)``.

        Raises:
            TypeError: ``config`` is not a :class:`CLIPConfig`, or ``config.vision`` does not
                match ``config.image_tower``.
            ValueError: unknown ``image_tower``, output dims that differ from ``embed_dim``, an
                empty ``config.vocab`` without a ``tokenizer``, or a ``text.vocab_size`` that is
                not the tokenizer's.
        """
        super().__init__()
        if not isinstance(config, CLIPConfig):
            raise TypeError(f"config must be a CLIPConfig, got {type(config).__name__}")
        c = config
        if c.image_tower not in IMAGE_TOWERS:
            raise ValueError(f"config.image_tower must be one of {IMAGE_TOWERS}, "
                             f"got {c.image_tower!r}")
        if c.vision.output_dim != c.embed_dim or c.text.output_dim != c.embed_dim:
            raise ValueError(f"vision.output_dim ({c.vision.output_dim}) and text.output_dim "
                             f"({c.text.output_dim}) must equal embed_dim ({c.embed_dim})")
        self.config = c
        if tokenizer is None and not c.vocab:
            raise ValueError("config.vocab is empty: build the config with CLIPConfig.build(..., "
                             "vocab) or a preset of vlm_course.recipes.clip")
        self.tokenizer = tokenizer if tokenizer is not None else _tokenizer(c.vocab)
        if self.tokenizer.vocab_size != c.text.vocab_size:
            raise ValueError(f"config.text.vocab_size must be the tokenizer's "
                             f"{self.tokenizer.vocab_size}, got {c.text.vocab_size}")
        if tower_name(c.vision) != c.image_tower:  # raises TypeError for an unknown config type
            wanted = IMAGE_TOWER_TYPES[c.image_tower][0].__name__
            raise TypeError(f"config.vision must be a {wanted} for "
                            f"config.image_tower={c.image_tower!r}, got {type(c.vision).__name__}")
        self.visual = build_image_tower(c.vision)  # the tower type follows the config type
        self.text = TextEncoder(c.text)
        self.logit_scale = nn.Parameter(torch.tensor(float(c.init_logit_scale)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def tokenize(self, texts: list[str], strict: bool = False) -> dict[str, torch.Tensor]:
        """Word-level tokens of ``texts``: ``input_ids`` / ``attention_mask`` (B, L) long and
        ``eot_index`` (B,) long, with ``L = config.text.context_length``.

        Unknown words become ``[UNK]``; with ``strict=True`` they raise ValueError listing them.
        Raises TypeError when ``texts`` is not a string or a list of strings.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
        enc = self.tokenizer(list(texts), context_length=self.config.text.context_length,
                             strict=strict)
        return {k: enc[k] for k in ("input_ids", "attention_mask", "eot_index")}

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] -> ``(B, D)`` float; unit rows when ``normalize``.

        Raises TypeError for a non-float ``images``, ValueError for a wrong shape (the tower's).
        """
        if not torch.is_tensor(images) or not images.is_floating_point():
            raise TypeError(f"images must be a float tensor (B, 3, H, W), got "
                            f"{getattr(images, 'dtype', type(images).__name__)}")
        features = self.visual(images.to(self.device))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens, normalize: bool = True) -> torch.Tensor:
        """Tokens from :meth:`tokenize` (or an ``input_ids`` (B, L) long tensor) -> ``(B, D)``.

        Raises TypeError for anything else; ValueError for bad ids (the text tower's checks).
        """
        if torch.is_tensor(tokens):
            features = self.text(tokens.to(self.device))
        elif hasattr(tokens, "__getitem__") and "input_ids" in tokens:
            parts = [tokens[k].to(self.device) if k in tokens else None
                     for k in ("input_ids", "attention_mask", "eot_index")]
            features = self.text(*parts)
        else:
            raise TypeError("tokens must be the dict returned by tokenize() or an input_ids "
                            f"tensor, got {type(tokens).__name__}")
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens):
        """``(image_emb (B, D), text_emb (B, D), logit_scale)``: unit rows, log-space scale."""
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale
