"""Checks for chapter 01's exercises (paradigms of visual recognition).

The questions are about why the paradigms behave as they do, not about the chapter's measured
numbers (which a re-run of ``bench/paradigms.py`` may change), so each is a multiple choice.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import choice

__all__ = ["check_one_shot_collapse", "check_fixed_budget", "check_digits_zero_shot",
           "check_many_labels"]


def check_one_shot_collapse(answer) -> Verdict:
    """Exercise 1: why a CNN from scratch can fall below chance with one label per class."""
    return choice(
        answer, "b", "abc",
        hint="count what each model fits to the 8 labelled images: a linear classifier on fixed "
             "features, or every weight (and the batch-norm statistics) of a network.",
        praise="With 8 images and full training the network memorises them: its features and "
               "batch-norm statistics fit those 8 images, and on new ones its predictions collapse "
               "onto a few classes. A logistic regression on fixed HOG features has far fewer "
               "parameters and a regulariser chosen on held-out data (chapter 09).")


def check_fixed_budget(answer) -> Verdict:
    """Exercise 2: what a fixed number of optimisation steps means for the 'full' column."""
    return choice(
        answer, "b", "abc",
        hint="how many passes over the pool does a fixed number of steps give with 1 label per "
             "class, and with the whole pool?",
        praise="The same number of steps is plenty for a few examples but too few passes over a "
               "pool of a thousand images to learn features from them: train longer, with "
               "augmentation, and the 'full' column rises. A fixed budget is a choice of the "
               "experiment, not a property of CNNs.")


def check_digits_zero_shot(answer) -> Verdict:
    """Exercise 3: why CLIP's zero-shot is near chance on the digits."""
    return choice(
        answer, "c", "abc",
        hint="zero-shot needs an image feature that the text of the class points to: which images "
             "were paired with which words during pre-training?",
        praise="The course's CLIP saw ShapeWorld scenes only: no handwritten digit was ever paired "
               "with its name, so nothing on the image side matches the text 'seven'. Zero-shot "
               "transfer works within what the pre-training pairs covered — the survey's argument "
               "for web-scale pre-training.")


def check_many_labels(answer) -> Verdict:
    """Exercise 4: the paradigm for many labels and for none."""
    return choice(
        answer, "a", "abc",
        hint="look at how the curves behave as the labels per class grow, and at which paradigm "
             "can predict with zero labels at all.",
        praise="With many labels per class the differences shrink and training (or fine-tuning) on "
               "the task itself is usually best; with none, only the zero-shot paradigm works.")
