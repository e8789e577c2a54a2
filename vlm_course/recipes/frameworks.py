"""The protocol of chapter 07's framework comparison: one world, one step budget, one seed.

Chapter 07 (pre-training frameworks).  The two-tower (``two_tower --preset tiny``, chapter 04's
CLIP), two-leg (``two_leg --preset tiny``) and one-tower (``one_tower --preset tiny``) presets all
train on
:func:`framework_world` with :func:`framework_train`: the same ShapeWorld scenes in the same order
(scene ``s*B + b`` at step ``s``), the same caption of each scene (keyed by the seed), the same
number of steps, batch size, learning-rate schedule and seed.  :data:`FRAMEWORKS` names them.
"""

from __future__ import annotations

__all__ = ["FRAMEWORKS", "framework_train", "framework_world"]

#: framework -> (recipe, preset) of the comparison.
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "two-tower": ("two_tower", "tiny"),
    "two-leg": ("two_leg", "tiny"),
    "one-tower": ("one_tower", "tiny"),
}


def framework_world():
    """Chapter 04's tiny CLIP world: 48-pixel canvas, one or two objects per scene."""
    from vlm_course.world import WorldConfig

    return WorldConfig(canvas=48, max_objects=2)


def framework_train():
    """The shared budget: 100 steps of 64 pairs, AdamW lr 2e-3 (10 warm-up steps), seed 0 (what
    three runs side by side could afford on the course's shared 2-core CPU)."""
    from vlm_course.training.loop import TrainConfig

    return TrainConfig(steps=100, batch_size=64, lr=2e-3, weight_decay=0.1, warmup_steps=10,
                       checkpoint_every=25)
