"""A one-tower vision-language model: the caption is rendered to pixels and read by the same ViT.

Chapter 07 (pre-training frameworks); CLIPPO, "Image-and-language understanding from pixels
only" (Tschannen et al. 2023).  The survey's third framework: instead of an image tower and a
text tower (CLIP, two towers) or two towers plus a fusion encoder (ALBEF/FLAVA, "two legs"), one
encoder serves both modalities.  CLIPPO rasterises the caption
(:class:`vlm_course.text.rasterise.TextRasteriser`) and feeds the rendered image through the
*same* Vision Transformer, with the *same* weights and the same projection, as the photo; the
two embeddings are trained with chapter 04's symmetric contrastive loss.  There is no tokenizer,
no word embedding table and no vocabulary: a misspelt or unknown word is still pixels.

The model keeps the VLM interface of every model of the course: ``tokenize(list[str])`` returns
``{"pixels": (B, 3, H, W) float32 in [0, 1]}`` (the rendered captions: the "tokens" of a pixel
model), ``encode_image(images) -> (B, D)``, ``encode_text(tokens) -> (B, D)`` — both through
:attr:`OneTower.visual` and L2-normalised unless ``normalize=False`` — and a log-space
``logit_scale``.  ``forward(images, tokens)`` returns ``(image_emb, text_emb, logit_scale)`` as
CLIP's does, so chapter 04's CLIP step trains it unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .vit import VisionTransformer, ViTConfig

__all__ = ["OneTowerConfig", "OneTower"]


@dataclass
class OneTowerConfig:
    """One ViT (``vision``; its ``output_dim`` is the joint space's width) for images and for
    captions rendered with ``font`` at ``font_size`` pixels on the ViT's canvas."""

    vision: ViTConfig = field(default_factory=lambda: ViTConfig(image_size=48, patch_size=8,
                                                                width=64, layers=2, heads=4))
    font_size: int = 7
    font: str = "DejaVuSans.ttf"
    init_logit_scale: float = math.log(1 / 0.07)

    def __post_init__(self) -> None:
        if not isinstance(self.vision, ViTConfig):
            raise TypeError(f"vision: expected a ViTConfig, got {type(self.vision).__name__}")
        if isinstance(self.font_size, bool) or not isinstance(self.font_size, int) \
                or self.font_size < 4:
            raise ValueError(f"font_size: expected an int >= 4, got {self.font_size!r}")

    @classmethod
    def tiny(cls, **vision) -> OneTowerConfig:
        """Chapter 04's tiny CLIP image tower (48x48, patch 8, width 64 x 2 layers, 64-d output),
        now also reading captions in 7-pixel DejaVu Sans (six lines on the canvas).  ``vision``
        overrides ViT fields."""
        return cls(vision=ViTConfig(**{"image_size": 48, "patch_size": 8, "width": 64,
                                       "layers": 2, "heads": 4, "output_dim": 64, **vision}))

    @property
    def embed_dim(self) -> int:
        return self.vision.output_dim

    @property
    def image_size(self):
        return self.vision.image_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OneTowerConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        vision = dict(d.pop("vision"))
        if isinstance(vision.get("image_size"), list):
            vision["image_size"] = tuple(vision["image_size"])
        return cls(vision=ViTConfig(**vision), **d)


class OneTower(nn.Module):
    """CLIPPO in miniature (see the module docstring).  ``OneTower(OneTowerConfig.tiny())``.

    ``visual`` is the one tower; ``rasteriser`` renders captions for it.  Raises TypeError when
    ``config`` is not a :class:`OneTowerConfig`.
    """

    def __init__(self, config: OneTowerConfig):
        super().__init__()
        from vlm_course.text.rasterise import TextRasteriser

        if not isinstance(config, OneTowerConfig):
            raise TypeError(f"config: expected a OneTowerConfig, got {type(config).__name__}")
        self.config = config
        self.visual = VisionTransformer(config.vision)
        self.rasteriser = TextRasteriser(config.vision.image_hw, config.font_size, config.font)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.init_logit_scale)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``{"pixels": (B, 3, H, W) float32 in [0, 1]}``: the captions rendered on the ViT's
        canvas (on the CPU; :meth:`encode_text` moves them).  Raises TypeError unless ``texts`` is
        a str or a list of str."""
        return {"pixels": self.rasteriser(texts)}

    def _encode(self, name: str, pixels, normalize: bool) -> torch.Tensor:
        if not torch.is_tensor(pixels) or not pixels.is_floating_point():
            raise TypeError(f"{name}: expected a float tensor (B, 3, H, W), got "
                            f"{getattr(pixels, 'dtype', type(pixels).__name__)}")
        features = self.visual(pixels.to(self.device))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] -> ``(B, D)``; unit rows when ``normalize``.

        Raises TypeError for non-float ``images``, ValueError for a size the ViT does not take.
        """
        return self._encode("images", images, normalize)

    def encode_text(self, tokens, normalize: bool = True) -> torch.Tensor:
        """Rendered captions (the dict of :meth:`tokenize`, or its ``(B, 3, H, W)`` pixels) ->
        ``(B, D)`` through the same ViT as the images; unit rows when ``normalize``.

        Raises TypeError for anything else (e.g. a list of str: call :meth:`tokenize` first).
        """
        if hasattr(tokens, "__getitem__") and not torch.is_tensor(tokens) \
                and not isinstance(tokens, (str, list, tuple)) and "pixels" in tokens:
            tokens = tokens["pixels"]
        elif not torch.is_tensor(tokens):
            raise TypeError(f"tokens: expected the dict returned by tokenize() (rendered "
                            f"captions under 'pixels'), got {type(tokens).__name__}")
        return self._encode("tokens", tokens, normalize)

    def forward(self, images: torch.Tensor, tokens):
        """``(image_emb (B, D), text_emb (B, D), logit_scale)``: unit rows, log-space scale."""
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale
