"""Chapter 09's self-checking exercises (vlm_course.exercises.ch09): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""

import subprocess
import sys

import pytest

from vlm_course.exercises import ch09 as CHECKS

# name -> (check taking one answer, a right answer, wrong answers)
CASES = {
    "check_one_scale": (CHECKS.check_one_scale, "b", ["a", "c"]),
    "check_few_validation": (CHECKS.check_few_validation, "a", ["b", "c"]),
    "check_probe_limit": (CHECKS.check_probe_limit, "c", ["a", "b"]),
    "check_image_only_zero_shot": (CHECKS.check_image_only_zero_shot, "b", ["a", "c"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_right_wrong_unanswered(name, monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)
    check, right, wrongs = CASES[name]
    ok = check(right)
    assert ok.ok and ok.message, ok
    for wrong in wrongs:
        bad = check(wrong)
        assert not bad.ok, (wrong, bad)
        assert bad.message != ok.message and "not answered" not in bad.message
    todo = check(...)
    assert not todo.ok and "not answered yet" in todo.message


@pytest.mark.parametrize("name", sorted(CASES))
def test_strict_mode_raises_on_a_wrong_answer(name, monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    check, right, wrongs = CASES[name]
    assert check(right).ok
    with pytest.raises(AssertionError, match="exercise check failed"):
        check(wrongs[0])


def test_every_check_is_tested_and_the_import_is_light():
    assert set(CASES) == {n for n in CHECKS.__all__ if n.startswith("check_")}
    code = f"import sys, {CHECKS.__name__}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing the checks must not import torch"
