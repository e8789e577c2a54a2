"""Checks for chapter 09's exercises (linear probing).

The answers do not depend on the shipped paradigm results or checkpoints (chapter 09's numbers may
be re-measured); where one follows from the package's behaviour (how ``fit_probe`` breaks ties)
the check asks the package. Importing this module does not import torch.
"""

from __future__ import annotations

from functools import lru_cache

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import choice

__all__ = ["check_one_scale", "check_few_validation", "check_probe_limit",
           "check_image_only_zero_shot"]

_ABC = ("a", "b", "c")


def check_one_scale(answer) -> Verdict:
    """Exercise 1: why ``fit_probe`` divides by one overall standard deviation."""
    return choice(
        answer, "b", _ABC,
        hint="think of 16 examples and a feature dimension that happens to be almost constant "
             "among them: what does dividing by its own standard deviation do to it on a test "
             "image? fit_probe's docstring names the concern.",
        praise="with a handful of examples a dimension that barely varies among them would be "
               "divided by a tiny standard deviation and blown up on the test images. One overall "
               "scale keeps the geometry of the features (their relative sizes) and still puts "
               "every encoder's C grid on the same footing.")


@lru_cache(maxsize=1)
def _smallest_c_wins_ties() -> bool:
    """Ask the package: when every C scores the same on validation, which C does it keep?"""
    import torch

    from vlm_course.evaluation.linear_probe import DEFAULT_CS, fit_probe

    labels = torch.arange(4).repeat(4)                 # 4 classes, 4 examples each
    features = torch.nn.functional.one_hot(labels, 4).float() * 10.0   # perfectly separable
    probe = fit_probe(features, labels, seed=0)
    assert len(set(probe.val_scores.values())) == 1, probe.val_scores   # all C tie
    return probe.C == min(DEFAULT_CS)


def check_few_validation(answer) -> Verdict:
    """Exercise 2: what one validation example per class does to the choice of C."""
    right = "a" if _smallest_c_wins_ties() else "b"
    return choice(
        answer, right, _ABC,
        hint="with one held-out example per class, how many different values can the "
             "validation accuracy take? Then read how fit_probe breaks ties between values of C.",
        praise="validation accuracy on 8 held-out images moves in steps of 1/8, so many values "
               "of C tie and the smallest (strongest regularisation) wins: the probe is then "
               "close to a nearest-class-mean classifier, a sensible default with so few "
               "examples. Choosing C on the test set would report an optimistic number, tuned on "
               "the very images it claims to measure.")


def check_probe_limit(answer) -> Verdict:
    """Exercise 3: what limits a linear probe once it has plenty of labels."""
    return choice(
        answer, "c", _ABC,
        hint="compare the probe's curve between 64 labels per class and the \"full\" pool: does "
             "it still climb? A linear probe can only read what the frozen features hold.",
        praise="a probe can only read what is linearly there. Once the labels pin down the best "
               "linear read-out, more of them change little: the probe is limited by the "
               "features (and by a C chosen on a small validation split), while zero-shot uses "
               "directions the text encoder learnt from captions.")


def check_image_only_zero_shot(answer) -> Verdict:
    """Exercise 4: can an image-only (SimCLR) model classify zero-shot?"""
    return choice(
        answer, "b", _ABC,
        hint="list what zero-shot classification needs to turn class names into classifier "
             "weights (chapter 08), and look for it on an image tower.",
        praise="zero-shot needs a text encoder to turn class names into classifier weights. An "
               "image-only model has no way to read a name: it needs at least one labelled "
               "example per class (a probe, or class means).")
