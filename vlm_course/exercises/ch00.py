"""Checks for chapter 00's exercises (Start here): softmax temperature, and device errors."""

from __future__ import annotations

import math

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_half_mass", "check_device_error"]


def _best_share(cosines: list[float], scale: float) -> float:
    """The softmax probability of the largest cosine at ``scale``."""
    top = max(cosines)
    return 1.0 / sum(math.exp(scale * (c - top)) for c in cosines)


def check_half_mass(answer, cosines) -> Verdict:
    """Exercise 1: the smallest whole-number scale at which the best of ``cosines`` (the chapter's
    five class cosines, a tensor or list) gets more than half the softmax probability."""
    values = [float(c) for c in cosines]
    truth = next(s for s in range(1, 10_001) if _best_share(values, s) > 0.5)
    return number(
        answer, truth,
        hint="evaluate class_probabilities(s)[0] for s = 1, 2, 3, ... and stop at the first s "
             "where it exceeds 0.5 (the slider is too coarse to tell neighbouring values apart).",
        praise=f"s = {truth}. The cosines differ by at most {max(values) - min(values):.2f}, so "
               "only a scale of this order turns those small differences into a clear winner; "
               "CLIP learns its scale and caps it at 100.")


def check_device_error(answer) -> Verdict:
    """Exercise 2: what ``VLM_COURSE_DEVICE=cuda`` does on a machine without a GPU."""
    return choice(
        answer, "b", "abc",
        hint="run settings.get_device() inside mock.patch.dict(os.environ, "
             "{'VLM_COURSE_DEVICE': 'cuda'}) on a machine without a GPU, or read "
             "settings.get_device's docstring.",
        praise="get_device() raises a ValueError naming VLM_COURSE_DEVICE and saying CUDA is not "
               "available here. A silent fallback would let a run meant for a GPU take hours on a "
               "CPU without telling you why; an error at the first line names what to fix.")
