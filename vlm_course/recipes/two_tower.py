"""The two-tower recipe of chapter 07's comparison: chapter 04's CLIP on the shared protocol.

Chapter 07 (pre-training frameworks); CLIP (Radford et al. 2021).  Everything but the preset and
the card's numbers is chapter 04's CLIP recipe (:mod:`vlm_course.recipes.clip`): the model, the
batches, the symmetric InfoNCE step and the clamp of ``logit_scale``.

* :data:`PRESETS` ``tiny`` — chapter 04's tiny CLIP on the comparison protocol
  (:mod:`vlm_course.recipes.frameworks`);
* :func:`evaluate` — :func:`vlm_course.evaluation.frameworks.framework_report`, the columns the
  two-leg and one-tower cards hold too.
"""

from __future__ import annotations

from collections.abc import Callable

from vlm_course.models.clip import CLIPConfig
from vlm_course.recipes import RecipePreset
from vlm_course.recipes.clip import (
    after_step,
    batches,
    build_model,
    model_from_config,
    shapeworld_vocab,
    step,
)
from vlm_course.recipes.frameworks import framework_train, framework_world

__all__ = ["PRESETS", "after_step", "batches", "build_model", "evaluate", "model_from_config",
           "step"]


def _tiny() -> RecipePreset:
    world = framework_world()
    return RecipePreset(model=CLIPConfig.tiny(shapeworld_vocab(world)), world=world,
                        train=framework_train())


#: ``tiny``: the comparison protocol of chapter 07.
PRESETS: dict[str, Callable[[], RecipePreset]] = {"tiny": _tiny}


def evaluate(model, world, **kwargs) -> dict:
    """The card's numbers: :func:`vlm_course.evaluation.frameworks.framework_report`."""
    from vlm_course.evaluation.frameworks import framework_report

    return framework_report(model, world, **kwargs)
