"""Chapter 06's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import math

import pytest
import torch

from vlm_course.evaluation.winoground import make_pairs
from vlm_course.exercises import ch06
from vlm_course.world import ShapeWorld, WorldConfig

POSITIVES = torch.eye(6, dtype=torch.bool)
POSITIVES[0, 3] = POSITIVES[2, 5] = True                 # two true off-diagonal captions
ITEMS = make_pairs(ShapeWorld(WorldConfig()), "binding", n=12, seed=0)
ENTROPY = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch06.check_itm_chance, (math.log(2), ENTROPY), (math.log(2), math.log(2)), ()),
    (ch06.check_false_negatives, 2, 8, (POSITIVES,)),
    (ch06.check_sampler_temperature, "b", "a", ()),
    (ch06.check_length_scorer, (0.0, 0.0, 0.0), (0.25, 0.25, 1 / 6), (ITEMS,)),
    (ch06.check_pointing_chance, 0.5, 1 / 9, ()),
]
IDS = [case[0].__name__ for case in CASES]


@pytest.mark.parametrize(("check", "right", "wrong", "extra"), CASES, ids=IDS)
def test_right_wrong_and_unanswered(check, right, wrong, extra, monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)
    assert check(right, *extra).ok
    result = check(wrong, *extra)
    assert not result.ok and "not answered" not in result.message and result.message
    unanswered = check(..., *extra)
    assert not unanswered.ok and "not answered yet" in unanswered.message


@pytest.mark.parametrize(("check", "right", "wrong", "extra"), CASES, ids=IDS)
def test_strict_mode_raises_on_a_wrong_answer(check, right, wrong, extra, monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    assert check(right, *extra).ok
    with pytest.raises(AssertionError, match="exercise check failed"):
        check(wrong, *extra)


def test_answers_of_the_wrong_shape_are_wrong_not_errors():
    assert not ch06.check_itm_chance(0.69).ok
    assert not ch06.check_length_scorer((0.0, 0.0), ITEMS).ok
