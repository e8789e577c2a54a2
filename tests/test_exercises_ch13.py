"""Chapter 13's self-checking exercises (vlm_course.exercises.ch13): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""

import subprocess
import sys

import pytest
import torch

from vlm_course.exercises import ch13 as CHECKS


def losses() -> tuple[float, float]:
    """The loss without the gather, spelled out (four processes of 16 of the 64 val pairs), and
    the gathered loss over all 64."""
    from vlm_course import pretrained
    from vlm_course.evaluation.shapeworld_report import world_config_from_card
    from vlm_course.objectives.contrastive import clip_loss
    from vlm_course.world import ShapeWorld

    model = pretrained.load("clip_tiny_shapeworld", device="cpu")
    world = ShapeWorld(world_config_from_card(pretrained.card("clip_tiny_shapeworld")))
    images, texts = world.pairs("val", range(64), seed=0)
    with torch.no_grad():
        whole = float(clip_loss(*model(images, model.tokenize(texts))))
        parts = [float(clip_loss(*model(images[16 * r:16 * (r + 1)],
                                         model.tokenize(texts[16 * r:16 * (r + 1)]))))
                 for r in range(4)]
    return sum(parts) / 4, whole


LOCAL, GATHERED = losses()

CASES = {
    "check_legacy_pooling": (CHECKS.check_legacy_pooling, "a", ["b", "c"]),
    "check_smallest_batch": (CHECKS.check_smallest_batch, 4, [1, 2, 8]),
    "check_local_loss": (CHECKS.check_local_loss, LOCAL, [LOCAL * 1.05, 0.0, [LOCAL]]),
    # short side 427 -> 224, long side 640 -> int(224 * 640 / 427) = 335; the crop keeps 224
    "check_crop_share": (CHECKS.check_crop_share, 224 / 335, [1.0, 224 / 640, 0.5]),
}


def test_local_loss_is_below_the_gathered_loss():
    # fewer negatives per row make an easier task: the lesson the check's praise states
    assert LOCAL < GATHERED
    assert f"{GATHERED:.4f}" in CHECKS.check_local_loss(LOCAL).message


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
