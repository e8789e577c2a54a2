"""Chapter 10's self-checking exercises (vlm_course.exercises.ch10): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


from exercise_cases import standard_tests

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


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
