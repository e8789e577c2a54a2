"""Checks for chapter 07's exercises (pre-training frameworks: two towers, two legs, one tower).

Ground truth comes from the package (Winoground scoring, the text rasteriser), never from a
shipped checkpoint's numbers, so retraining the frameworks does not change a right answer.
Importing this module does not import torch.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import number

__all__ = ["check_constant_scorer", "check_small_font_lines", "check_rerank_share"]


def check_constant_scorer(answer) -> Verdict:
    """Exercise 1: the Winoground group accuracy of a scorer that gives every pair one score."""
    import torch

    from vlm_course.evaluation.winoground import winoground_scores

    target = winoground_scores(torch.full((10, 2, 2), 1 / 3))["group"]
    return number(
        answer, target, tol=1e-9,
        hint="build a (P, 2, 2) tensor holding one value everywhere (torch.full) and pass it to "
             "winoground_scores; then read its docstring: what does it say about ties?",
        praise="ties count as wrong, so a scorer that cannot tell the four pairs of an item apart "
               "earns nothing, however high its scores. A fusion head that has learned only its "
               "prior adds nothing to binding: whatever the two-leg model scores there comes "
               "from its towers, which you can measure on their own with "
               "`evaluate_winoground(clip_scorer(models[\"two-leg\"]), world, [\"binding\"])`.")


def check_small_font_lines(answer) -> Verdict:
    """Exercise 2: how many lines of text the 48-pixel canvas holds at font size 5."""
    from vlm_course.text.rasterise import TextRasteriser

    target = TextRasteriser(48, 5).max_lines
    return number(
        answer, target,
        hint="build the rasteriser with font size 5 and read its max_lines property (line height "
             "is the font size plus one pixel of gap).",
        praise=f"{target} lines instead of 6 at font size 7, so longer captions fit. But letters "
               "5 pixels tall merge into blobs, and the one-tower ViT cuts the canvas into "
               "8-pixel patches: more than one line per patch row. To read such text it would "
               "need a finer patch (4 pixels) or a larger canvas, at a higher cost per image.")


def check_rerank_share(answer) -> Verdict:
    """Exercise 3: the share of full fusion ranking left when only the top 16 of 1,000 captions
    are re-scored by the fusion encoder."""
    top, collection = 16, 1000
    return number(
        answer, top / collection, rel=0.01,
        hint="count the caption-image pairs the fusion encoder reads in each scheme: full fusion "
             "ranking reads every caption of the collection, re-ranking only the shortlist.",
        praise="the fusion encoder reads 16 pairs instead of 1,000, so its cost falls to 1.6 % of "
               "full fusion ranking; the towers' shortlist costs one matrix product over an index "
               "built once. This is how ALBEF ranks: towers first, fusion for the top few.")
