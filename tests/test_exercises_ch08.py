"""Chapter 08's self-checking exercises (vlm_course.exercises.ch08): each check accepts the right
answer (derived here independently where it is a number), rejects wrong ones with its hint, says
"not answered yet" for ``...``, and raises AssertionError on a wrong answer under
VLM_COURSE_CHECKS=strict."""


from exercise_cases import standard_tests

from vlm_course.exercises import ch08 as CHECKS

# name -> (check taking one answer, a right answer, wrong answers)
CASES = {
    "check_unknown_class_name": (CHECKS.check_unknown_class_name, "b", ["a", "c", "d", 2]),
    "check_generic_templates": (CHECKS.check_generic_templates, "b", ["a", "c"]),
    # 100 tied images: pessimistic puts the 99 wrong ones first; expected gives 1/N
    "check_tied_recall": (CHECKS.check_tied_recall, (0.0, 0.01), [(0.01, 0.0), (0.0, 0.0), 0.0,
                                                                  "0, 0.01"]),
    "check_background_prompt": (CHECKS.check_background_prompt, "B", ["a", "c"]),
    # 48-pixel canvas: (48 - 16) / 8 + 1 = 5 positions per side
    "check_sliding_windows": (CHECKS.check_sliding_windows, 25, [5, 36, 16]),
    "check_image_level_filter": (CHECKS.check_image_level_filter, "a", ["b", "c"]),
    "check_every_true_caption": (CHECKS.check_every_true_caption, "a", ["b", "c"]),
}


(test_check_right_wrong_unanswered, test_strict_mode_raises_on_a_wrong_answer,
 test_every_check_is_tested_and_the_import_is_light) = standard_tests(CHECKS, CASES)
