"""Checks for chapter 06's exercises (alignment objectives): ITM chance, false negatives, the
hard-negative sampler, a bag-of-words scorer on Winoground pairs, and the pointing game's chance.

The truths come from the package: ``itm_loss`` at constant probabilities, the chapter's own
``positives`` matrix, ``winoground_scores`` of a length scorer, ``pointing_game``'s chance.
"""

from __future__ import annotations

import math

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_itm_chance", "check_false_negatives", "check_sampler_temperature",
           "check_length_scorer", "check_pointing_chance"]


def _numbers(answer, n: int, what: str, hint: str):
    """``answer`` as a tuple of ``n`` floats, or a Verdict explaining the expected form."""
    try:
        values = tuple(float(a) for a in answer)
    except (TypeError, ValueError):
        values = ()
    if len(values) != n:
        return verdict(False, f"expected {n} numbers ({what}), got {answer!r}. " + hint)
    return values


def check_itm_chance(answer, batch: int = 8) -> Verdict:
    """Exercise 1: ``(loss at p = 1/2, loss at p(match) = 1/3)`` on B positives and 2B
    negatives, within 0.005 each."""
    import torch

    from vlm_course.objectives.alignment import itm_loss

    hint = ("itm_loss is the mean binary cross-entropy over the 3B pairs: a third of them are "
            "positives. Evaluate -log p for positives and -log(1 - p) for negatives.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    given = _numbers(answer, 2, "loss at 1/2, loss at 1/3", hint)
    if isinstance(given, Verdict):
        return given
    labels = torch.tensor([1] * batch + [0] * 2 * batch)
    truth = [float(itm_loss(torch.full((3 * batch,), math.log(p / (1 - p))), labels))
             for p in (0.5, 1 / 3)]
    ok = all(abs(a - t) <= 0.005 for a, t in zip(given, truth, strict=True))
    return verdict(ok, hint, praise=(
        f"log 2 ≈ {truth[0]:.3f} for every pair at p = 1/2; answering 'match' with probability "
        f"1/3 everywhere gives -1/3 log 1/3 - 2/3 log 2/3 ≈ {truth[1]:.3f} — the entropy of the "
        "labels, the loss any model must beat."))


def check_false_negatives(answer, positives) -> Verdict:
    """Exercise 2: how many off-diagonal pairs of the (B, B) bool ``positives`` are true."""
    truth = int(positives.sum()) - int(positives.diagonal().sum())
    return number(
        answer, truth,
        hint="positives[i, j] is True when caption j is true of image i: count the True entries "
             "that are not on the diagonal.",
        praise=f"{truth} of {positives.shape[0] * (positives.shape[0] - 1)} off-diagonal pairs "
               "are true, mostly count captions such as 'there are two objects'. ALBEF's sampler, "
               "which only removes the diagonal, would draw them as negatives — and more often "
               "than random ones, because a true caption is similar to the image — teaching the "
               "model to reject true captions.")


def check_sampler_temperature(answer) -> Verdict:
    """Exercise 3: how the one-word fraction moves when negatives are drawn from ``sim / 4``."""
    return choice(
        answer, "b", "abc",
        hint="what does dividing the logits by 4 do to a softmax? Think of the limit where you "
             "divide by a huge number.",
        praise="It falls towards the random fraction: a smaller scale flattens the softmax, and at "
               "scale 0 the sampler is uniform over the non-positives.")


def check_length_scorer(answer, items) -> Verdict:
    """Exercise 4: ``(text, image, group)`` Winoground scores of a scorer that returns each
    caption's number of characters, on the WinogroundSet ``items`` (the chapter's binding pairs)."""
    import torch

    from vlm_course.evaluation.winoground import score_pairs, winoground_scores

    hint = ("write scorer(images, texts) returning torch.tensor([float(len(t)) for t in texts]), "
            "then winoground_scores(score_pairs(scorer, items['binding'])); answer with the "
            "three scores.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    given = _numbers(answer, 3, "text, image, group", hint)
    if isinstance(given, Verdict):
        return given
    scores = winoground_scores(score_pairs(
        lambda images, texts: torch.tensor([float(len(t)) for t in texts]), items))
    truth = (scores["text"], scores["image"], scores["group"])
    ok = all(abs(a - t) <= 1e-6 for a, t in zip(given, truth, strict=True))
    return verdict(ok, hint, praise=(
        f"text {truth[0]:.2f}, image {truth[1]:.2f}, group {truth[2]:.2f}. A scorer blind to "
        "the image gives a caption the same score with both images, so every image comparison "
        "is a tie (ties count as wrong); and the text score needs s(c0) > s(c1) for image 0 but "
        "s(c1) > s(c0) for image 1 — impossible when the image does not enter the score. A "
        "model that reads words as a bag is in the same position on these pairs."))


def check_pointing_chance(answer) -> Verdict:
    """Exercise 5: the pointing game's chance for a word naming one object of a two-object scene
    when the regions are only the objects' boxes (from ``pointing_game``'s own chance)."""
    import torch

    from vlm_course.evaluation.pointing import pointing_game

    targets = torch.zeros(1, 2, 1, dtype=torch.bool)
    targets[0, 0, 0] = True                         # two regions (boxes), the word names one
    truth = pointing_game(torch.zeros(1, 2, 1), targets)["chance"]
    return number(
        answer, truth, tol=0.01,
        hint="chance is the probability that a region picked uniformly at random is the word's "
             "target: count the regions a word can point at.",
        praise=f"{truth:.2f} instead of 1/9. With nine grid regions every word has exactly one "
               "target among nine; with only the objects' boxes, a scene with one or two objects "
               "gives chance 1 or 1/2 — a much weaker test.")
