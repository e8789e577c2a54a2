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
    """The shared budget: 1000 steps of 64 pairs, AdamW lr 2e-3 (50 warm-up steps, then cosine),
    seed 0.  One step of the three runs costs about 0.75 single-thread CPU-s on the course's
    2-core CPU (two-tower 0.13, two-leg 0.40, one-tower 0.21; ``bench/frameworks.py`` measures
    them side by side): about 12 CPU-minutes for the comparison, ten times the first shipped
    budget, and what a machine shared with other jobs could give the three runs side by side."""
    from vlm_course.training.loop import TrainConfig

    return TrainConfig(steps=1000, batch_size=64, lr=2e-3, weight_decay=0.1, warmup_steps=50,
                       checkpoint_every=100)
