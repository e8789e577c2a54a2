"""Recipes: one module per training objective, each a batch source and a step function for the
one training loop (:func:`vlm_course.training.loop.train`).

Chapter 04 (CLIP, SimCLR) and every later objective.  A recipe module ``vlm_course.recipes.<name>``
defines:

* ``PRESETS: dict[str, Callable[[], RecipePreset]]`` — model config, world config, training
  config (and objective options) of each preset;
* ``build_model(preset) -> nn.Module`` and ``model_from_config(dict) -> nn.Module`` (a card's or
  ``run.json``'s ``model_config`` back to a model);
* ``batches(world, model, config, **options) -> BatchSource`` — ``source(step, rank, world_size)``;
* ``step(model, batch) -> (loss, metrics)``, optionally ``after_step(model)``;
* ``evaluate(model, world, **kwargs) -> dict`` — the numbers for a shipped checkpoint's card.

:data:`RECIPES` maps a recipe's name to its module path; :func:`get` imports one.  Nothing heavy
is imported here (no torch), so listing the recipes is cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["RECIPES", "RecipePreset", "get"]

#: Recipe name -> module (a new objective registers itself here).
RECIPES: dict[str, str] = {
    "clip": "vlm_course.recipes.clip",
    "siglip": "vlm_course.recipes.siglip",
    "simclr": "vlm_course.recipes.simclr",
    "itm": "vlm_course.recipes.itm",
    "mae": "vlm_course.recipes.mae",
    "multimodal": "vlm_course.recipes.multimodal",
    "supervised": "vlm_course.recipes.supervised",
    "two_tower": "vlm_course.recipes.two_tower",
    "two_leg": "vlm_course.recipes.two_leg",
    "one_tower": "vlm_course.recipes.one_tower",
}


@dataclass
class RecipePreset:
    """Everything a preset fixes: ``model`` (the model's config dataclass), ``world`` (a
    :class:`~vlm_course.world.WorldConfig`), ``train`` (a
    :class:`~vlm_course.training.loop.TrainConfig`) and ``options`` (keyword arguments of the
    recipe's ``batches``, e.g. SimCLR's augmentations)."""

    model: Any
    world: Any
    train: Any
    options: dict = field(default_factory=dict)


def get(name: str) -> ModuleType:
    """The recipe module registered as ``name``.

    Raises:
        ValueError: ``name`` is not in :data:`RECIPES` (the known names are listed).
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    return importlib.import_module(RECIPES[name])
