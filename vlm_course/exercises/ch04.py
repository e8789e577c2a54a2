"""Checks for chapter 04's exercises (contrastive objectives).

Chance levels and losses are computed with the package's own loss functions on inputs that make
every candidate equally likely (or every cosine zero), so the checks test the same code the chapter
teaches.
"""

from __future__ import annotations

import math

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_chance_levels", "check_half_entropy", "check_longer_simclr",
           "check_identical_captions", "check_siglip_init", "check_local_loss"]


def _pair(answer, what: str, hint: str):
    """``answer`` as a pair of floats, or a Verdict explaining the expected form."""
    try:
        a, b = (float(x) for x in answer)
    except (TypeError, ValueError):
        return verdict(False, f"expected a pair of numbers ({what}), got {answer!r}. " + hint)
    return a, b


def check_chance_levels(answer, batch: int = 256) -> Verdict:
    """Exercise 1: ``(CLIP loss, NT-Xent loss)`` at chance for a batch of ``batch`` pairs /
    images, within 0.01 each."""
    import torch

    from vlm_course.objectives.contrastive import clip_loss, nt_xent_loss

    hint = ("at step 0 every candidate is equally likely: count the candidates each row's "
            "softmax chooses among — B captions for CLIP; for NT-Xent, the other views of a "
            "batch of 2B views.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    given = _pair(answer, "CLIP, NT-Xent", hint)
    if isinstance(given, Verdict):
        return given
    same = torch.ones(batch, 4)                      # identical embeddings: a uniform softmax
    truth = (float(clip_loss(same, same, 0.0)), float(nt_xent_loss(same, same, 1.0)))
    ok = all(abs(a - t) <= 0.01 for a, t in zip(given, truth, strict=True))
    return verdict(ok, hint, praise=(
        f"log {batch} = {truth[0]:.2f} for CLIP: all B captions are equally likely. NT-Xent has "
        f"2B = {2 * batch} views and each chooses among the {2 * batch - 1} others: "
        f"log {2 * batch - 1} = {truth[1]:.2f}. A loss above these at step 0 means a bug."))


def check_half_entropy(answer, cos) -> Verdict:
    """Exercise 2: the temperature at which the mean row entropy of ``softmax(cos / t)`` is half
    of ``log B`` (``cos`` the chapter's (B, B) toy cosines tensor), within 5 %."""

    def entropy(t: float) -> float:
        p = (cos / t).softmax(dim=1)
        return float(-(p * p.clamp_min(1e-12).log()).sum(dim=1).mean())

    target = math.log(cos.shape[0]) / 2
    lo, hi = 1e-3, 10.0                               # entropy rises with t: bisect in log space
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if entropy(mid) < target else (lo, mid)
    truth = math.sqrt(lo * hi)
    return number(
        answer, truth, rel=0.05,
        hint="row_entropy grows with the temperature: bracket the point where it crosses "
             "math.log(B_demo) / 2 and narrow it down (bisection, or scipy.optimize.brentq).",
        praise=f"τ ≈ {truth:.3f} (scale ≈ {1 / truth:.0f}): already at a scale of about ten the "
               "softmax has lost half its uncertainty, which is why CLIP starts at τ = 0.07.")


def check_longer_simclr(answer) -> Verdict:
    """Exercise 3: what 300 SimCLR steps do for the colour-distorted encoder."""
    return choice(
        answer, "b", "abc",
        hint="what does the pretext task become when colour can no longer identify the pair? "
             "Compare SimCLR's schedule (hundreds of epochs, batch 4096) with 300 steps of 64.",
        praise="In our measurement after 300 steps at batch 64 the colour-distorted encoder still "
               "probes at 0.17 for colour and 0.17 for shape (chance 0.125), with the loss stuck "
               "near 3.5, while the crops-and-flips encoder reaches loss 2.4, colour 1.00 and "
               "shape 0.55. Removing the colour shortcut makes the task much harder; SimCLR relies "
               "on long schedules and large batches to solve it.")


def check_identical_captions(answer, k: int = 4) -> Verdict:
    """Exercise 4: the lowest image->text loss on the rows of ``k`` identical captions."""
    return number(
        answer, math.log(k), tol=1e-3,
        hint="identical strings get identical embeddings, so each of the k copies gets the same "
             "probability p in image i's softmax; what is the largest p can be?",
        praise=f"log {k} ≈ {math.log(k):.3f}: k p ≤ 1, so the row's loss -log p ≥ log k whatever "
               "the encoders do. CLIP's loss punishes a model for not separating captions that "
               "are the same — UniCL's label-aware targets remove these false negatives.")


def check_siglip_init(answer, batch: int = 64) -> Verdict:
    """Exercise 5: the SigLIP loss of a batch of ``batch`` pairs with all cosines zero, scale 10
    and bias -10 (within 0.1, so random high-dimensional embeddings count too)."""
    import torch

    from vlm_course.objectives.contrastive import siglip_loss

    eye = torch.eye(2 * batch)
    truth = float(siglip_loss(eye[:batch], eye[batch:], math.log(10), -10.0))  # cosines all 0
    return number(
        answer, truth, tol=0.1,
        hint="with cosines ≈ 0 every logit is the bias, -10: add -log σ(-10) for each of the B "
             "positives and -log σ(10) for each of the B(B-1) negatives, then divide by B.",
        praise=f"≈ {truth:.3f}: each positive costs -log σ(-10) ≈ 10 and each negative "
               "-log σ(10) ≈ 4.5e-5, so the loss is about 10 + (B - 1) · 4.5e-5 — the bias of -10 "
               "makes the many negatives nearly free from the start (random 512-d embeddings "
               "give about 10.05).")


def check_local_loss(answer, world_size: int = 4, batch: int = 256, rank: int = 2) -> Verdict:
    """Exercise 6: ``(logits per GPU, targets of GPU rank)`` for distributed_clip_loss with
    ``local_loss=True``; the targets as a list or tensor."""
    hint = ("each GPU compares its B images with all W·B texts and its B texts with all W·B "
            "images; its targets are the positions of its own pairs in the gathered batch "
            "(read distributed_clip_loss).")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    try:
        logits, targets = answer
        targets = [int(t) for t in targets]
        logits = float(logits)
    except (TypeError, ValueError):
        return verdict(False, "expected a pair (number of logits, list of targets), got "
                              f"{answer!r}. " + hint)
    W, B = world_size, batch
    truth_logits = 2 * B * (W * B)
    truth_targets = list(range(rank * B, (rank + 1) * B))
    if logits != truth_logits:
        return verdict(False, "the number of logits is not right. " + hint)
    return verdict(targets == truth_targets, "the logits are right, the targets are not. " + hint,
                   praise=f"{truth_logits:,} logits per GPU instead of the full "
                          f"{(W * B) ** 2:,}; GPU {rank}'s targets are {rank * B}, ..., "
                          f"{(rank + 1) * B - 1} — the positions of its own pairs in the "
                          "gathered batch.")
