"""Chapter 07's self-checking exercises (vlm_course.exercises.ch07): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


from exercise_cases import standard_tests

from vlm_course.exercises import ch07 as CHECKS

# name -> (check taking one answer, a right answer, wrong answers)
CASES = {
    "check_constant_scorer": (CHECKS.check_constant_scorer, 0.0, [1 / 3, 0.25, "zero"]),
    # font size 5: lines of 5 + 1 pixels on 48 rows, the last without a gap: (48 + 1) // 6
    "check_small_font_lines": (CHECKS.check_small_font_lines, 8, [6, 9, [8]]),
    "check_rerank_share": (CHECKS.check_rerank_share, 16 / 1000, [1.0, 0.16, 16]),
}


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
