"""Chapter 11's self-checking exercises (vlm_course.exercises.ch11): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""

import subprocess
import sys

import pytest
import torch

from vlm_course.exercises import ch11 as CHECKS

# chapter 11's toy logits
TEACHER = torch.tensor([[6.0, 2.5, 0.5, -1.0], [0.0, 4.0, 3.5, -2.0]])
STUDENT = torch.tensor([[4.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])


def check_temperature_factor(answer):
    return CHECKS.check_temperature_factor(answer, STUDENT, TEACHER)


CASES = {
    "check_temperature_factor": (check_temperature_factor, "with", ["without", "both", 2.0]),
    "check_distill_weight": (CHECKS.check_distill_weight, "b", ["a", "c"]),
    "check_distance_gradient": (CHECKS.check_distance_gradient, "l1", ["cosine", "L2"]),
    "check_soft_pixels": (CHECKS.check_soft_pixels, "c", ["a", "b"]),
    "check_keep_top": (CHECKS.check_keep_top, "b", ["a", "c"]),
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
