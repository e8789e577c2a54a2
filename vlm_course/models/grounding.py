"""A region-word alignment head (GLIP-style): project region and word features into one space.

Chapter 06 (alignment objectives).  GLIP (Li et al. 2022) recasts detection as phrase grounding:
every region proposal is scored against every word of the prompt, ``logit = <region, word>``,
and trained with a sigmoid focal loss against the phrase-grounding targets (which words describe
which box).  The head here is the learnable part: two linear maps (regions from an image tower's
feature map, words from a text tower's token features) into an ``embed_dim`` space, plus a
log-space ``logit_scale`` and a ``bias``.  The scores and the loss are the pure functions
:func:`vlm_course.objectives.alignment.region_word_logits` and
:func:`~vlm_course.objectives.alignment.region_word_loss`; region features come from
:func:`~vlm_course.objectives.alignment.pool_regions` (``torchvision.ops.roi_align``).

Shapes: regions ``(B, M, Di)`` -> ``(B, M, E)``; words ``(B, L, Dt)`` -> ``(B, L, E)``; both
L2-normalised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RegionWordConfig", "RegionWordHead"]


@dataclass
class RegionWordConfig:
    """``image_dim`` / ``text_dim``: input widths; ``embed_dim`` E; the initial (log-space)
    scale and bias of the logits (GLIP-like: a negative bias, most pairs are negatives)."""

    image_dim: int = 64
    text_dim: int = 64
    embed_dim: int = 64
    init_logit_scale: float = math.log(10.0)
    init_bias: float = -4.0

    def __post_init__(self) -> None:
        for name in ("image_dim", "text_dim", "embed_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RegionWordConfig.{name}: expected an int >= 1, got {value!r}")

    @classmethod
    def tiny(cls, **overrides) -> RegionWordConfig:
        """64-d inputs and a 64-d joint space."""
        return replace(cls(), **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


class RegionWordHead(nn.Module):
    """Stages ``encode_regions((B, M, Di)) -> (B, M, E)`` and ``encode_words((B, L, Dt)) ->
    (B, L, E)`` (linear maps, L2-normalised); ``forward(regions, words)`` returns both and
    ``logit_scale`` / ``bias`` are parameters."""

    def __init__(self, config: RegionWordConfig):
        super().__init__()
        if not isinstance(config, RegionWordConfig):
            raise TypeError(f"config: expected a RegionWordConfig, got {type(config).__name__}")
        c = self.config = config
        self.region_proj = nn.Sequential(nn.LayerNorm(c.image_dim),
                                         nn.Linear(c.image_dim, c.embed_dim))
        self.word_proj = nn.Sequential(nn.LayerNorm(c.text_dim),
                                       nn.Linear(c.text_dim, c.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(float(c.init_logit_scale)))
        self.bias = nn.Parameter(torch.tensor(float(c.init_bias)))

    @staticmethod
    def _check(name: str, x, width: int, letter: str) -> None:
        if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() != 3 \
                or x.shape[-1] != width:
            what = f"{x.dtype} {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{name}: expected a float (B, {letter}, {width}) tensor, got {what}")

    def encode_regions(self, regions: torch.Tensor) -> torch.Tensor:
        """``(B, M, Di) -> (B, M, E)``, unit rows."""
        self._check("regions", regions, self.config.image_dim, "M")
        return F.normalize(self.region_proj(regions), dim=-1)

    def encode_words(self, words: torch.Tensor) -> torch.Tensor:
        """``(B, L, Dt) -> (B, L, E)``, unit rows."""
        self._check("words", words, self.config.text_dim, "L")
        return F.normalize(self.word_proj(words), dim=-1)

    def forward(self, regions: torch.Tensor, words: torch.Tensor):
        """``(encode_regions(regions), encode_words(words))``."""
        return self.encode_regions(regions), self.encode_words(words)
