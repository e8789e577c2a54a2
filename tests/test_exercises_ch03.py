"""Chapter 03's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import pytest

from vlm_course.exercises import ch03
from vlm_course.world import ShapeWorld, WorldConfig

CFG = WorldConfig()
STAR_COLOURS = [c for c in CFG.colours if (c, "star") not in CFG.heldout]


def word_noise(n: int = 300) -> float:
    batch = ShapeWorld(WorldConfig(background="mixed", caption_noise=0.5)).batch(
        "train", range(n), masks=False)
    words = sum(len(c.split()) for caps in batch.captions for c in caps)
    return sum(len(r) for r in batch.caption_noise) / words


NOISE = word_noise()

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch03.check_star_colours, STAR_COLOURS, list(CFG.colours), ()),
    (ch03.check_bag_of_words, "a", "b", ()),
    (ch03.check_noisy_words, NOISE, 0.5, ()),
    (ch03.check_split_scenes, False, True, ()),
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


def test_star_colours_agree_with_sampled_training_scenes():
    spec = ShapeWorld(CFG).sample("train", range(2000))
    seen = {CFG.colours[c] for c in spec.colour[spec.shape == CFG.shapes.index("star")]}
    assert seen == set(STAR_COLOURS) and len(seen) == len(CFG.colours) - 1
    assert ch03.check_star_colours(set(STAR_COLOURS), CFG).ok


def test_noisy_words_is_far_below_the_caption_rate_and_answers_need_a_number():
    assert 0.02 < NOISE < 0.15
    assert not ch03.check_noisy_words("0.06").ok
    assert not ch03.check_split_scenes("no").ok
