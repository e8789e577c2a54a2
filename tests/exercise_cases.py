"""The three standard tests of a chapter's self-checking exercises, shared by the
tests/test_exercises_chNN.py files whose checks all take one answer.

``standard_tests(CHECKS, CASES)`` returns them; a test module binds them to test_* names.
CASES maps a check's name to (check, a right answer, wrong answers).
"""

import subprocess
import sys

import pytest


def standard_tests(CHECKS, CASES):
    """(right/wrong/unanswered test, strict-mode test, coverage + light-import test)."""

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
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "False", "importing the checks must not import torch"

    return (test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
            test_every_check_is_tested_and_the_import_is_light)
