"""Chapter 00's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import pytest
import torch

from vlm_course.exercises import ch00

COSINES = torch.tensor([0.31, 0.24, 0.22, 0.18, 0.12])       # the chapter's five cosines
HALF = next(s for s in range(1, 101) if torch.softmax(s * COSINES, 0)[0] > 0.5)

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch00.check_half_mass, HALF, HALF - 1, (COSINES,)),
    (ch00.check_device_error, "b", "a", ()),
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


def test_half_mass_is_thirteen_for_the_chapter_cosines():
    assert HALF == 13 and ch00.check_half_mass(13, COSINES.tolist()).ok
