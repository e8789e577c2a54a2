"""Chapter 05's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import pytest

from vlm_course.exercises import ch05
from vlm_course.world import WorldConfig

CFG = WorldConfig()

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch05.check_ratios_that_raise, [0.98, 0.99], [0.97, 0.98, 0.99], ()),
    (ch05.check_restore_roundtrip, 0.0, 1e-3, ()),
    (ch05.check_black_patch, "a", "c", ()),
    (ch05.check_bert_unchanged, "b", "a", ()),
    (ch05.check_text_alone, ("red", 1 / 7), ("blue", 1 / 7), (CFG,)),
    (ch05.check_prefix_vs_causal, "c", "a", ()),
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


def test_text_alone_needs_both_parts_right():
    assert not ch05.check_text_alone(("red", 1 / 8)).ok
    assert not ch05.check_text_alone("red").ok
    assert ch05.check_text_alone(("red", 0.14)).ok
