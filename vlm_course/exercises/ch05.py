"""Checks for chapter 05's exercises (generative objectives): masking, MAE targets, BERT, PrefixLM.

Where a check needs the truth it asks the package: ``random_masking`` decides which ratios raise,
``restore_order`` is run on fresh noise, and ShapeWorld's config names the held-out colours.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number, same_set

__all__ = ["check_ratios_that_raise", "check_restore_roundtrip", "check_black_patch",
           "check_bert_unchanged", "check_text_alone", "check_prefix_vs_causal"]

RATIOS = (0.5, 0.9, 0.95, 0.97, 0.98, 0.99)


def check_ratios_that_raise(answer, n: int = 36) -> Verdict:
    """Exercise 1: which of :data:`RATIOS` make ``random_masking`` raise for ``n`` tokens."""
    import torch

    from vlm_course.objectives.masking import random_masking

    truth = []
    for r in RATIOS:
        try:
            random_masking(torch.zeros(1, n, 1), r)
        except ValueError:
            truth.append(r)
    return same_set(
        answer, truth,
        hint="random_masking keeps int(N * (1 - ratio)) tokens and refuses to keep none: compute "
             "that number for each ratio (or call random_masking in a try block).",
        praise="ratios above 35/36 ≈ 0.972 keep int(36 · (1 - r)) = 0 tokens and raise. int() "
               "truncates, so r = 0.9 keeps int(3.6) = 3 patches, not 4 — as in MAE's and "
               "Hugging Face's code, which the oracle test matches exactly.")


def check_restore_roundtrip(answer) -> Verdict:
    """Exercise 2: the largest |restored - original| over several noises (0 when exact)."""
    import torch

    from vlm_course.objectives.masking import random_masking, restore_order

    gen = torch.Generator().manual_seed(1)
    tokens = torch.randn(3, 36, 4, generator=gen)
    worst = 0.0
    for _ in range(5):
        out = random_masking(tokens, 0.75, generator=gen)
        shuffled = tokens.gather(1, out.ids_restore.argsort(1)[..., None].expand_as(tokens))
        worst = max(worst, float((restore_order(shuffled, out.ids_restore) - tokens).abs().max()))
    return number(
        answer, worst, tol=0.0,
        hint="gather all N tokens with ids_restore.argsort(1) (expanded over the last dimension), "
             "pass them to restore_order, and take the largest absolute difference from the "
             "original tokens over a few random noises.",
        praise="0 exactly: ids_restore.argsort(1) is ids_shuffle, gathering with it shuffles, and "
               "restore_order gathers with the inverse permutation — a permutation and its inverse "
               "(tests/test_masking.py::test_restore_after_shuffle_is_identity).")


def check_black_patch(answer) -> Verdict:
    """Exercise 3: the normalised target of a uniformly black patch, and why ``eps``."""
    return choice(
        answer, "a", "abc",
        hint="a uniform patch has mean 0 and variance 0: compute (t - mean) / sqrt(var + eps) "
             "with and without eps.",
        praise="(0 - 0) / sqrt(0 + eps) = 0: the target is all zeros. Without eps it would be "
               "0 / 0 = NaN, and one black patch would turn the whole loss into NaN.")


def check_bert_unchanged(answer) -> Verdict:
    """Exercise 4: why BERT leaves 10% of the chosen tokens unchanged."""
    return choice(
        answer, "b", "abc",
        hint="if every prediction target were a [MASK], what would the model learn about the "
             "positions that are not [MASK]? And which positions does fine-tuning show it?",
        praise="Only [MASK] positions would carry a prediction task, so the representation of "
               "every real token could ignore its context; fine-tuning and downstream use never "
               "show [MASK], so features learned for real tokens would be poor. Random and "
               "unchanged tokens force the model to check every token.")


def check_text_alone(answer, cfg=None, shape: str = "triangle") -> Verdict:
    """Exercise 5: ``(colour never predicted, best text-only accuracy)`` for "a small [MASK]
    <shape>" in training captions of ``cfg`` (default ``WorldConfig()``); accuracy within 0.01."""
    from vlm_course.world import WorldConfig

    cfg = WorldConfig() if cfg is None else cfg
    hint = ("cfg.heldout says which colour never meets this shape in training; a model that reads "
            "only the text can do no better than guess among the colours that do.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    try:
        colour, acc = answer
        acc = float(acc)
    except (TypeError, ValueError):
        return verdict(False, f"expected a pair (colour, accuracy), got {answer!r}. " + hint)
    never = [c for c in cfg.colours if (c, shape) in cfg.heldout]
    best = 1 / (len(cfg.colours) - len(never))
    ok = colour in never and len(never) == 1 and abs(acc - best) <= 0.01
    return verdict(ok, hint, praise=(
        f"{never[0]} (the {never[0]} {shape} is held out), and at most 1/{len(cfg.colours) - 1} ≈ "
        f"{best:.2f} with the other colours equally likely: the colour is in the image, not in "
        "the words around it — the cross-modal signal is the point."))


def check_prefix_vs_causal(answer) -> Verdict:
    """Exercise 6: what a fully causal mask would change for the image tokens."""
    return choice(
        answer, "c", "abc",
        hint="draw attention_pattern's prefix mask and make its image block lower-triangular: "
             "what does patch 0 see then, and what decides the order of the patches?",
        praise="Early patches could no longer see later ones: the image representation would "
               "depend on the arbitrary raster order, and the first patches would know almost "
               "nothing about the scene. PrefixLM keeps full attention on the prefix precisely to "
               "avoid that.")
