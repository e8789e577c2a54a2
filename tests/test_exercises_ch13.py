"""Chapter 13's self-checking exercises (vlm_course.exercises.ch13): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


import torch
from exercise_cases import standard_tests

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


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
