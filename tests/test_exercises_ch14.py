"""Chapter 14's exercise checks: every check accepts the right answer and rejects a wrong one."""

import json

import pytest

from vlm_course import pretrained
from vlm_course.exercises import ch14
from vlm_course.settings import repo_path


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)


def test_german_colours():
    clip_vocab = set(pretrained.card("clip_tiny_shapeworld")["model_config"]["vocab"])
    assert "orange" in clip_vocab and "rot" not in clip_vocab
    assert ch14.check_german_colours(["orange", "cyan"])
    assert ch14.check_german_colours({"cyan", "orange"})
    assert not ch14.check_german_colours(["orange"])
    assert not ch14.check_german_colours(list(ch14.GERMAN_COLOURS))
    assert not ch14.check_german_colours("orange cyan")
    assert "not answered" in ch14.check_german_colours(...).message


def test_days_for_clip_pairs():
    rate = json.loads(repo_path("bench", "results", "clip_throughput.json").read_text())[
        "pairs_per_s_course"]
    days = 32 * 400e6 / rate / 86400
    assert 100 < days < 400
    assert ch14.check_days_for_clip_pairs(days)
    assert ch14.check_days_for_clip_pairs(round(days))
    assert not ch14.check_days_for_clip_pairs(days * 24)          # hours, not days
    assert not ch14.check_days_for_clip_pairs("180")
    assert not ch14.check_days_for_clip_pairs(float("nan"))


def test_why_per_class():
    assert ch14.check_why_per_class("c")
    assert ch14.check_why_per_class(" C ")
    assert not ch14.check_why_per_class("a")
    wrong = ch14.check_why_per_class("e")
    assert not wrong and "'a'" in wrong.message


def test_pairs_ratio():
    # the cards: clip_tiny_shapeworld 1,500 steps x 128, frameworks_two_tower 1,000 steps x 64
    assert ch14.check_pairs_ratio(1500 * 128 / (1000 * 64))
    assert not ch14.check_pairs_ratio(30)   # the ratio before the frameworks were re-shipped
    assert not ch14.check_pairs_ratio([3])


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    with pytest.raises(AssertionError, match="exercise check failed"):
        ch14.check_pairs_ratio(2)
    assert ch14.check_pairs_ratio(3)
