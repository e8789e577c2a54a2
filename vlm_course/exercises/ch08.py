"""Checks for chapter 08's exercises (zero-shot classification, retrieval, segmentation,
detection).

Where the answer is a fact of the package (the tie rules of retrieval, the canvas of the shipped
model's world) the check computes it; the multiple-choice answers about measured effects are
computed live by the notebook's solutions, so strict mode proves the measurement still agrees.
Importing this module does not import torch.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_unknown_class_name", "check_generic_templates", "check_tied_recall",
           "check_background_prompt", "check_sliding_windows", "check_image_level_filter",
           "check_every_true_caption"]

_ABC = ("a", "b", "c")


def check_unknown_class_name(answer) -> Verdict:
    """Exercise 1: what happens to red objects when the class name is "crimson"."""
    return choice(
        answer, "b", _ABC,
        hint="look at the unknown words the classifier reports and at the accuracy per colour: "
             "which prompt is the red objects' class now, and how close is it to the other "
             "seven colour prompts?",
        praise="\"crimson\" is not in the vocabulary, so its prompt reads \"a [UNK]\" and names no "
               "colour at all. The other seven prompts each name a colour that a red object does "
               "not have, so a red image is least unlike the one prompt that names none: it is "
               "classified by elimination. The word carries no meaning here; swap in a second "
               "unknown name and the two classes would be indistinguishable.")


def check_generic_templates(answer) -> Verdict:
    """Exercise 2: does an ensemble of generic templates still beat the mean single one?"""
    return choice(
        answer, "b", _ABC,
        hint="compare the two margins (ensemble minus mean single template) of the generic sweep "
             "and of the sixteen colour-and-size templates, printed side by side.",
        praise="averaging cancels biases that point in different directions. \"a small red {}\" "
               "and \"a large blue {}\" pull towards different images, so their mean keeps only "
               "the shape; generic templates share the same small biases, so there is little "
               "to cancel, and the ensemble may even fall below the best single template.")


def check_tied_recall(answer) -> Verdict:
    """Exercise 3: R@1 of a constant model on 100 images with one caption each, as the pair
    ``(pessimistic, expected)``."""
    import torch

    from vlm_course.evaluation.retrieval import retrieval_metrics

    N = 100
    same = torch.ones(N, 4)                       # every image and caption: the same vector
    owner = torch.arange(N)                       # caption i describes image i
    target = tuple(retrieval_metrics(same, same, owner, ks=(1,), ties=rule)["t2i_R@1"]
                   for rule in ("pessimistic", "expected"))
    hint = ("with every score tied, count how many wrong images tie with the true one; the "
            "pessimistic rule puts all of them first, the expected rule breaks ties uniformly at "
            "random (retrieval_ranks' docstring).")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    try:
        pess, expected = (float(a) for a in answer)
    except (TypeError, ValueError):
        return verdict(False, "expected a pair of numbers (pessimistic, expected). " + hint)
    ok = abs(pess - target[0]) <= 1e-9 and abs(expected - target[1]) <= 1e-6
    return verdict(ok, hint,
                   f"pessimistic {target[0]:g}: every one of the 99 other images ties with the "
                   f"true one and counts against it. Expected {target[1]:g} = 1/N, chance: the "
                   "true image comes first in 1 of N random orders. The expected rule is the one "
                   "that scores a model that knows nothing at exactly chance.")


def check_background_prompt(answer) -> Verdict:
    """Exercise 4: background IoU and mIoU with one sentence as the background prompt."""
    return choice(
        answer, "b", _ABC,
        hint="evaluate the two segmenters on the same scenes and compare iou[0] (the background "
             "class) and miou.",
        praise="\"there are no objects\" is a caption of a whole scene, less like the feature of "
               "one empty patch than \"the background\"; more empty pixels go to a shape, so the "
               "background IoU falls, and with it mIoU. Background prompts are chosen, like class "
               "prompts, for what the dense features of empty regions look like.")


def check_sliding_windows(answer) -> Verdict:
    """Exercise 5: the number of 16x16 windows with stride 8 on the shipped model's canvas."""
    from vlm_course import pretrained
    from vlm_course.evaluation.shapeworld_report import world_config_from_card

    canvas = world_config_from_card(pretrained.card("clip_tiny_shapeworld")).canvas
    per_side = (canvas - 16) // 8 + 1
    return number(
        answer, per_side ** 2,
        hint="count the positions of a window's left edge along one side (from 0, in steps of the "
             "stride, while the window stays inside the image), then square it.",
        praise=f"{per_side} positions per side, {per_side ** 2} windows per image against one or "
               "two connected regions. Most windows hold background or part of an object, so NMS "
               "has to pick one window per object, and AP at high IoU thresholds drops: a window "
               "on a fixed grid is rarely tight around an object.")


def check_image_level_filter(answer) -> Verdict:
    """Exercise 6: mIoU of MaskCLIP maps filtered by the image-level classifier's top 2."""
    return choice(
        answer, "a", _ABC,
        hint="compare mean_iou of the arg-max of pseudo_logits with keep_top equal to the number "
             "of shapes (no filter) and with keep_top=2, on the same scenes.",
        praise="the image-level classifier names the shapes of a scene well, while the dense "
               "features mainly localise and confuse shapes. Keeping only the shapes the image "
               "is likely to contain removes most confusions: the global embedding names, the "
               "dense map says where. Chapter 11 uses exactly this filter for its pseudo-labels.")


def check_every_true_caption(answer) -> Verdict:
    """Exercise 7: how R@1 changes when every true caption of a scene counts as a hit."""
    return choice(
        answer, "a", _ABC,
        hint="a query's rank is 1 + the number of wrong candidates scoring at least as high as "
             "its best true one. What does marking more candidates as true do to that count?",
        praise="more true candidates can only remove wrong ones from above the best true one, so "
               "neither direction can get worse. Many \"misses\" of the own-captions protocol "
               "were true captions of the image, sampled for another scene. When the chapter was "
               "written, image-to-text gained the most on the first 100 test scenes (R@1 about "
               "0.78 -> 0.95): an image query gains many true captions.")
