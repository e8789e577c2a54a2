"""The two-leg model of chapter 07: CLIP's towers, a fusion encoder, ITM and MLM heads.

Chapter 07 (pre-training frameworks); ALBEF (Li et al. 2021) and FLAVA (Singh et al. 2022).
:class:`TwoLegModel` is chapter 06's :class:`~vlm_course.models.itm.ITMModel` (two towers feed a
fusion encoder whose first fused token has a match / no-match head) plus, when
``TwoLegConfig.mlm`` is on, ALBEF's third head: a linear layer from every fused text token to the
vocabulary, for **masked language modelling conditioned on the image** (chapter 05's objective,
:func:`vlm_course.objectives.generative.mlm_loss`).  A masked colour word in "a [MASK] circle and
a blue square" can only be recovered by looking at the circle in the image: the head's loss
teaches the fusion encoder which colour belongs to which shape.

Everything else — the VLM interface, ``image_tokens``, ``text_tokens``, ``towers``, ``fuse``,
``match_probability`` — is :class:`~vlm_course.models.itm.ITMModel`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .itm import ITMConfig, ITMModel

__all__ = ["TwoLegConfig", "TwoLegModel"]


@dataclass
class TwoLegConfig(ITMConfig):
    """An :class:`~vlm_course.models.itm.ITMConfig` (towers, fusion, ``freeze_towers``) and
    ``mlm``: whether the model has a masked-language-modelling head (fused width ->
    ``clip.text.vocab_size`` logits).  :meth:`ITMConfig.for_clip` builds one (``mlm`` on)."""

    mlm: bool = True

    def to_dict(self) -> dict:
        return {**super().to_dict(), "mlm": self.mlm}

    @classmethod
    def from_dict(cls, d: dict) -> TwoLegConfig:
        """Inverse of :meth:`to_dict`; a dict without ``mlm`` (an ITM model's) has no MLM head."""
        base = ITMConfig.from_dict(d)
        return cls(clip=base.clip, fusion=base.fusion, freeze_towers=base.freeze_towers,
                   mlm=bool(d.get("mlm", False)))


class TwoLegModel(ITMModel):
    """:class:`~vlm_course.models.itm.ITMModel` plus ``mlm_head`` (``nn.Linear(D, V)``, when
    ``config.mlm``) and the stage :meth:`masked_word_logits`.

    Raises TypeError unless ``config`` is a :class:`TwoLegConfig`.
    """

    def __init__(self, config: TwoLegConfig, tokenizer=None):
        if not isinstance(config, TwoLegConfig):
            raise TypeError(f"config: expected a TwoLegConfig, got {type(config).__name__}")
        super().__init__(config, tokenizer=tokenizer)
        self.mlm_head = (nn.Linear(config.fusion.width, config.clip.text.vocab_size)
                         if config.mlm else None)

    def masked_word_logits(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
                           text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, V)`` vocabulary logits at every position of the fused text.

        image_tokens: ``(B, N, Di)`` (:meth:`image_tokens`); text_tokens ``(B, L, Dt)`` and
        text_mask ``(B, L)`` (1 = real) of the *masked* captions (:meth:`text_tokens`).
        Raises RuntimeError when the model has no MLM head (``config.mlm`` off); the fusion
        encoder raises ValueError for wrong shapes.
        """
        if self.mlm_head is None:
            raise RuntimeError("masked_word_logits: this model has no MLM head "
                               "(TwoLegConfig.mlm is False)")
        fused = self.fusion.forward_features(text_tokens, image_tokens, text_mask)  # (B, L, D)
        return self.mlm_head(fused)                                                  # (B, L, V)
