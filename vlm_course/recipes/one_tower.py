"""The one-tower recipe: CLIPPO in miniature, trained with chapter 04's contrastive step.

Chapter 07 (pre-training frameworks); Tschannen et al. 2023.  The model
(:class:`~vlm_course.models.one_tower.OneTower`) keeps CLIP's interface — its ``tokenize``
renders the captions to pixels — so the batches, the step and the clamp of ``logit_scale`` are
chapter 04's (:mod:`vlm_course.recipes.clip`): the same ShapeWorld pairs, the same symmetric
InfoNCE.  Only the model differs.

* :data:`PRESETS` ``tiny`` — the course's framework comparison protocol
  (:mod:`vlm_course.recipes.frameworks`: same world, step budget, batch and seed as the
  two-tower and two-leg presets);
* :func:`evaluate` — the comparison's numbers
  (:func:`vlm_course.evaluation.frameworks.framework_report`).
"""

from __future__ import annotations

from collections.abc import Callable

from vlm_course.models.one_tower import OneTower, OneTowerConfig
from vlm_course.recipes import RecipePreset
from vlm_course.recipes.clip import after_step, batches, step
from vlm_course.recipes.frameworks import framework_train, framework_world

__all__ = ["PRESETS", "after_step", "batches", "build_model", "evaluate", "model_from_config",
           "step"]

#: ``tiny``: the comparison protocol of chapter 07.
PRESETS: dict[str, Callable[[], RecipePreset]] = {
    "tiny": lambda: RecipePreset(model=OneTowerConfig.tiny(), world=framework_world(),
                                 train=framework_train()),
}


def build_model(preset: RecipePreset) -> OneTower:
    """A freshly initialised one-tower model of ``preset.model`` (seed torch first)."""
    return OneTower(preset.model)


def model_from_config(model_config: dict) -> OneTower:
    """The one-tower model of a card's / ``run.json``'s ``model_config`` (weights not loaded)."""
    return OneTower(OneTowerConfig.from_dict(model_config))


def evaluate(model, world, **kwargs) -> dict:
    """The card's numbers: :func:`vlm_course.evaluation.frameworks.framework_report`."""
    from vlm_course.evaluation.frameworks import framework_report

    return framework_report(model, world, **kwargs)
