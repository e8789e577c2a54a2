"""Chapter 10's self-checking exercises (vlm_course.exercises.ch10): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""

import subprocess
import sys

import pytest

from vlm_course.exercises import ch10 as CHECKS

# Counts by hand for the tiny CLIP (8 shape classes, token width 64, a 2-block image ViT of
# width 64): class-specific CoOp 8 x 4 x 64; LoRA on q, v of 2 blocks: 2 x 2 x (64 r + 64 r).
CASES = {
    "check_coop_two_words": (CHECKS.check_coop_two_words, 0.0, [0.5, 1e-3]),
    "check_class_specific": (CHECKS.check_class_specific, 8 * 4 * 64, [4 * 64, 8 * 4, 2047]),
    "check_tip_knobs": (CHECKS.check_tip_knobs, "a", ["b", "c"]),
    "check_clean_headroom": (CHECKS.check_clean_headroom, "a", ["b", "c"]),
    "check_lora_params": (CHECKS.check_lora_params, [512 * r for r in (1, 4, 16)],
                          [[256, 1024, 4096], [512, 2048], 512, "512 r"]),
}


def test_lora_params_takes_a_dict_too():
    assert CHECKS.check_lora_params({1: 512, 4: 2048, 16: 8192}).ok
    assert not CHECKS.check_lora_params({1: 512, 4: 2048}).ok


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
