"""Chapter 11's self-checking exercises (vlm_course.exercises.ch11): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


import torch
from exercise_cases import standard_tests

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


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
