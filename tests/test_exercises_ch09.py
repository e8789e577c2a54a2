"""Chapter 09's self-checking exercises (vlm_course.exercises.ch09): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


from exercise_cases import standard_tests

from vlm_course.exercises import ch09 as CHECKS

# name -> (check taking one answer, a right answer, wrong answers)
CASES = {
    "check_one_scale": (CHECKS.check_one_scale, "b", ["a", "c"]),
    "check_few_validation": (CHECKS.check_few_validation, "a", ["b", "c"]),
    "check_probe_limit": (CHECKS.check_probe_limit, "c", ["a", "b"]),
    "check_image_only_zero_shot": (CHECKS.check_image_only_zero_shot, "b", ["a", "c"]),
}


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
