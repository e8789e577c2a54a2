"""The SigLIP recipe: chapter 04's CLIP recipe with the pairwise sigmoid loss instead of InfoNCE.

Chapters 04 and 12; Zhai et al. 2023.  Everything but the model and the loss is the CLIP recipe
(:mod:`vlm_course.recipes.clip`): the same ShapeWorld pairs in the same order (``scenes=N`` for a
finite pool), the same presets' towers, worlds and schedules, the same card numbers.

* :data:`PRESETS` ``tiny`` — the CLIP ``tiny`` preset with a :class:`~vlm_course.models.siglip.
  SigLIPConfig`;
* :func:`step` — :func:`~vlm_course.objectives.contrastive.siglip_loss` over the batch of this
  process (single process: SigLIP's chunked multi-device form is not implemented, so under
  ``torchrun`` each rank's loss sees only its own shard's negatives);
* :func:`after_step` — clamps the log-space ``logit_scale`` to ``<= log(100)`` as CLIP does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vlm_course.models.siglip import SigLIP, SigLIPConfig
from vlm_course.objectives.contrastive import siglip_loss
from vlm_course.recipes import RecipePreset
from vlm_course.recipes.clip import PRESETS as CLIP_PRESETS
from vlm_course.recipes.clip import after_step, batches, evaluate, shapeworld_vocab

__all__ = ["PRESETS", "after_step", "batches", "build_model", "evaluate", "model_from_config",
           "step"]


def _tiny() -> RecipePreset:
    clip = CLIP_PRESETS["tiny"]()
    return RecipePreset(model=SigLIPConfig.tiny(shapeworld_vocab(clip.world)), world=clip.world,
                        train=clip.train)


#: ``tiny``: CLIP's tiny preset (towers, world, schedule) with SigLIP's loss and initial values.
PRESETS: dict[str, Callable[[], RecipePreset]] = {"tiny": _tiny}


def build_model(preset: RecipePreset) -> SigLIP:
    """A freshly initialised SigLIP of ``preset.model`` (seed torch first for a fixed init)."""
    return SigLIP(preset.model)


def model_from_config(model_config: dict) -> SigLIP:
    """The SigLIP of a card's / ``run.json``'s ``model_config`` dict (weights not loaded)."""
    return SigLIP(SigLIPConfig.from_dict(model_config))


def step(model, batch) -> tuple[torch.Tensor, dict]:
    """SigLIP's sigmoid loss on one batch ``(images, tokens)``; metrics: ``logit_scale``
    (``exp`` of the log-space scale) and ``logit_bias``, both before the update."""
    from vlm_course.training.loop import unwrap

    images, tokens = batch
    image_emb, text_emb, logit_scale = model(images, tokens)
    bias = unwrap(model).logit_bias
    loss = siglip_loss(image_emb.float(), text_emb.float(), logit_scale.float(), bias.float())
    return loss, {"logit_scale": float(logit_scale.detach().exp()),
                  "logit_bias": float(bias.detach())}
