"""Chapter 12's exercise checks: a right and a wrong answer each, and the placeholder."""

import pytest

from vlm_course.evaluation.published import rows
from vlm_course.exercises import ch12
from vlm_course.recipes.scaling import ScalingPoint


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)


def test_model_gain():
    family = rows("OpenCLIP (LAION-400M)")
    assert ch12.check_model_gain(family[-1].top1 - family[0].top1)
    assert ch12.check_model_gain(9.81)
    assert not ch12.check_model_gain(72.77 / 62.96)        # a ratio, not points
    assert not ch12.check_model_gain(True)
    assert "not answered yet" in ch12.check_model_gain(...).message


def test_data_only_comparison():
    assert ch12.check_data_only_comparison("b") and ch12.check_data_only_comparison(" B ")
    assert not ch12.check_data_only_comparison("a")
    assert not ch12.check_data_only_comparison(2)
    assert "not answered yet" in ch12.check_data_only_comparison(...).message


def test_repeats():
    assert ch12.check_repeats(ScalingPoint().samples / 256) and ch12.check_repeats(50)
    assert not ch12.check_repeats(256) and not ch12.check_repeats("100")
    assert "not answered yet" in ch12.check_repeats(...).message


def test_batch_steps_negatives():
    assert ch12.check_batch_steps_negatives((50, 255))
    assert not ch12.check_batch_steps_negatives((50, 256))
    assert not ch12.check_batch_steps_negatives((200, 255))
    assert not ch12.check_batch_steps_negatives([100, 255])
    assert not ch12.check_batch_steps_negatives((50.5, 255))
    assert "not answered yet" in ch12.check_batch_steps_negatives(...).message


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    with pytest.raises(AssertionError, match="exercise check failed"):
        ch12.check_repeats(7)
    assert ch12.check_repeats(50)
