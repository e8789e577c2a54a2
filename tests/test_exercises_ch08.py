"""Chapter 08's self-checking exercises (vlm_course.exercises.ch08): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""

import subprocess
import sys

import pytest

from vlm_course.exercises import ch08 as CHECKS

# name -> (check taking one answer, a right answer, wrong answers)
CASES = {
    "check_unknown_class_name": (CHECKS.check_unknown_class_name, "b", ["a", "c", "d", 2]),
    "check_generic_templates": (CHECKS.check_generic_templates, "b", ["a", "c"]),
    # 100 tied images: pessimistic puts the 99 wrong ones first; expected gives 1/N
    "check_tied_recall": (CHECKS.check_tied_recall, (0.0, 0.01), [(0.01, 0.0), (0.0, 0.0), 0.0,
                                                                  "0, 0.01"]),
    "check_background_prompt": (CHECKS.check_background_prompt, "B", ["a", "c"]),
    # 48-pixel canvas: (48 - 16) / 8 + 1 = 5 positions per side
    "check_sliding_windows": (CHECKS.check_sliding_windows, 25, [5, 36, 16]),
    "check_image_level_filter": (CHECKS.check_image_level_filter, "a", ["b", "c"]),
    "check_every_true_caption": (CHECKS.check_every_true_caption, "a", ["b", "c"]),
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
