"""Checks for chapter 12's exercises (benchmarks; survey § 8).

Each ``check_*`` takes the student's answer and returns a :class:`~vlm_course.exercises.Verdict`;
the right answers are computed from the package (:mod:`vlm_course.evaluation.published`,
:class:`vlm_course.recipes.scaling.ScalingPoint`), not typed in here.
"""

from __future__ import annotations

from numbers import Real

from vlm_course.exercises import Verdict, unanswered, verdict

__all__ = ["check_batch_steps_negatives", "check_data_only_comparison", "check_model_gain",
           "check_repeats"]


def _number(answer) -> float | None:
    if isinstance(answer, bool) or not isinstance(answer, Real):
        return None
    return float(answer)


def check_model_gain(answer) -> Verdict:
    """Exercise 1: zero-shot ImageNet points gained from OpenCLIP ViT-B/32 to ViT-L/14, both
    trained on LAION-400M (a number, ± 0.05)."""
    from vlm_course.evaluation.published import rows

    family = rows("OpenCLIP (LAION-400M)")
    truth = family[-1].top1 - family[0].top1
    value = _number(answer)
    ok = value is not None and abs(value - truth) <= 0.05
    return verdict(ok, "take the `top1` of the first and the last row of "
                       "`published.rows(\"OpenCLIP (LAION-400M)\")` and subtract (in points, "
                       "not a ratio)",
                   f"{truth:.2f} points from a bigger image tower at the same data — the "
                   "model-size trend of the survey's tables.", answer=answer)


def check_data_only_comparison(answer) -> Verdict:
    """Exercise 2: which pair of published rows changes *only* the data (``"a"``, ``"b"`` or
    ``"c"``)."""
    ok = isinstance(answer, str) and answer.strip().lower() == "b"
    return verdict(ok, "for each pair list what differs: the model, the training code, the data "
                       "set, its size, the batch. Only one pair differs in a single one of them.",
                   "same architecture, same code, same recipe; only the data set (and its "
                   "size) changes. Comparisons across papers change several things at once.",
                   answer=answer)


def check_repeats(answer) -> Verdict:
    """Exercise 3: how many times a run of ``ScalingPoint(scenes=256)`` (default budget) sees
    each of its training pairs (a number)."""
    from vlm_course.recipes.scaling import ScalingPoint

    point = ScalingPoint(scenes=256)
    truth = point.samples / point.scenes
    value = _number(answer)
    ok = value is not None and abs(value - truth) < 1e-9
    return verdict(ok, "the run sees `samples` pairs in all, cycling through `scenes` distinct "
                       "ones: read both off `ScalingPoint(scenes=256)`",
                   f"{truth:g} epochs over 256 pairs: the same compute as the fresh stream, "
                   "far less information.", answer=answer)


def check_batch_steps_negatives(answer) -> Verdict:
    """Exercise 4: ``(optimiser steps, negatives per image per step)`` of a run at batch 256 with
    the default budget of :class:`~vlm_course.recipes.scaling.ScalingPoint` (a pair of ints)."""
    from vlm_course.recipes.scaling import ScalingPoint

    point = ScalingPoint(batch_size=256)
    truth = (point.steps, point.batch_size - 1)
    ok = (not unanswered(answer) and isinstance(answer, tuple) and len(answer) == 2
          and all(_number(a) is not None for a in answer)
          and tuple(int(a) for a in answer) == truth
          and all(float(a) == int(a) for a in answer))
    return verdict(ok, "steps = pairs seen / batch size; in a batch of B pairs each image has one "
                       "matching caption and the rest are its negatives. Answer a tuple "
                       "(steps, negatives).",
                   f"{truth[0]} steps, {truth[1]} negatives each: four times the negatives of "
                   "batch 64, a quarter of the updates.", answer=answer)
