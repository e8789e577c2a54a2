"""SigLIP: CLIP's two towers with a learnable logit bias, for the pairwise sigmoid loss.

Chapter 04 (contrastive objectives) and chapter 12 (the objective axis of the scaling sweep);
Zhai et al. 2023, "Sigmoid loss for language image pre-training".  The architecture and the VLM
interface are :class:`~vlm_course.models.clip.CLIP`'s; SigLIP adds one scalar, ``logit_bias``
(not in log space), and starts from other values: ``logit_scale = log 10`` and
``logit_bias = -10``, so that the ``B^2 - B`` unmatched pairs start with a small loss.
The loss is :func:`vlm_course.objectives.contrastive.siglip_loss`; the training step lives in
:mod:`vlm_course.recipes.siglip`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .clip import CLIP, CLIPConfig

__all__ = ["SigLIP", "SigLIPConfig"]


@dataclass
class SigLIPConfig(CLIPConfig):
    """A :class:`~vlm_course.models.clip.CLIPConfig` with SigLIP's initial values
    (``init_logit_scale = log 10``, ``init_logit_bias = -10``); the presets ``tiny`` /
    ``tiny_resnet`` / ``small`` and :meth:`build` are CLIP's, returning this class."""

    init_logit_scale: float = math.log(10.0)
    init_logit_bias: float = -10.0


class SigLIP(CLIP):
    """CLIP plus ``logit_bias`` (a () float parameter): ``SigLIP(SigLIPConfig.tiny(vocab))``.

    ``forward(images, tokens)`` returns ``(image_emb (B, D), text_emb (B, D), logit_scale)`` like
    CLIP (embeddings L2-normalised, ``logit_scale`` in log space); read ``logit_bias`` from the
    model.

    Raises:
        TypeError: ``config`` is not a :class:`SigLIPConfig` (and CLIP's errors).
    """

    def __init__(self, config: SigLIPConfig, tokenizer=None):
        if not isinstance(config, SigLIPConfig):
            raise TypeError(f"config must be a SigLIPConfig, got {type(config).__name__}")
        super().__init__(config, tokenizer)
        self.logit_bias = nn.Parameter(torch.tensor(float(config.init_logit_bias)))
