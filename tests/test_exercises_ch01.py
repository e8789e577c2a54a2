"""Chapter 01's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import pytest

from vlm_course.exercises import ch01

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch01.check_one_shot_collapse, "b", "a", ()),
    (ch01.check_fixed_budget, "B", "c", ()),
    (ch01.check_digits_zero_shot, "c", "b", ()),
    (ch01.check_many_labels, "a", "b", ()),
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

