"""Checks for chapter 14's exercises (challenges and future directions).

Each ``check_*`` takes the student's answer and returns a
:class:`~vlm_course.exercises.Verdict` (see :mod:`vlm_course.exercises`): a hint on a wrong answer
that says where to look, never the answer; "not answered yet" for ``...``. The right answers are
computed here from the same sources the chapter reads (the shipped checkpoint's tokenizer, the
shipped benchmark results), not typed in.
"""

from __future__ import annotations

import json
import math

from vlm_course.exercises import Verdict, unanswered, verdict

__all__ = ["check_german_colours", "check_days_for_clip_pairs", "check_why_per_class",
           "check_pairs_ratio"]

#: German names of ShapeWorld's eight colours, in the world's order (red ... white).
GERMAN_COLOURS = ("rot", "grün", "blau", "gelb", "lila", "orange", "cyan", "weiß")
#: Pairs CLIP saw in pre-training: 32 epochs over 400 million pairs (Radford et al. 2021).
CLIP_PAIRS_SEEN = 32 * 400_000_000


def _shipped_vocab() -> set[str]:
    from vlm_course import pretrained

    return set(pretrained.card("clip_tiny_shapeworld")["model_config"]["vocab"])


def check_german_colours(answer) -> Verdict:
    """Exercise 1: the German colour names (:data:`GERMAN_COLOURS`) the shipped CLIP's tokenizer
    reads as themselves rather than ``[UNK]``, as a list or set of strings."""
    from vlm_course.text import Tokenizer

    hint = ("split each name with Tokenizer.split and keep a name only when every piece is in "
            "the shipped CLIP's vocabulary (`clip.tokenizer.unknown_words([...])` lists the rest).")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__iter__"):
        return verdict(False, f"expected a list or set of strings, got "
                              f"{type(answer).__name__}. " + hint)
    vocab = _shipped_vocab()
    right = {w for w in GERMAN_COLOURS if all(p in vocab for p in Tokenizer.split(w))}
    return verdict(set(answer) == right, hint,
                   "right: only the words German borrowed unchanged survive; the other six "
                   "collapse into one [UNK] prompt, so a German user gets a 3-way classifier.")


def _number(answer) -> float | None:
    """``float(answer)`` for a number (int, float, NumPy scalar, one-element tensor); None for
    anything else, strings and booleans included."""
    if isinstance(answer, (str, bytes, bool)):
        return None
    try:
        return float(answer)
    except (TypeError, ValueError, RuntimeError):
        return None


def _throughput() -> float:
    from vlm_course.settings import repo_path

    path = repo_path("bench", "results", "clip_throughput.json")
    return float(json.loads(path.read_text())["pairs_per_s_course"])


def check_days_for_clip_pairs(answer) -> Verdict:
    """Exercise 2: days the tiny CLIP would need, at the eager course throughput in
    ``bench/results/clip_throughput.json``, to see CLIP's 12.8 billion pairs (within 2 %)."""
    hint = ("divide the pairs CLIP saw (32 epochs x 400 million) by the course model's pairs per "
            "second in bench/results/clip_throughput.json ('pairs_per_s_course'), then by the "
            "seconds in a day.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    value = _number(answer)
    if value is None:
        return verdict(False, f"expected a number of days, got {type(answer).__name__}. " + hint)
    target = CLIP_PAIRS_SEEN / _throughput() / 86_400
    ok = math.isfinite(value) and abs(value - target) <= 0.02 * target
    return verdict(ok, hint, f"right: about {target:.0f} days for a 232k-parameter model; CLIP's "
                             f"ViT-L/14 has over a thousand times as many parameters.")


def check_why_per_class(answer) -> Verdict:
    """Exercise 3 (multiple choice, ``"a"`` .. ``"d"``): why the probe is fitted on the top
    ``k`` images *per class* and not on every image's zero-shot argmax."""
    options = {"a", "b", "c", "d"}
    hint = ("look at how the zero-shot predictions on the grainy pool are distributed over the "
            "classes (torch.bincount of the argmax) and what a probe fitted on them would learn.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    given = answer.strip().lower() if isinstance(answer, str) else None
    if given not in options:
        return verdict(False, f"answer with one of 'a', 'b', 'c', 'd', got {answer!r}. " + hint)
    return verdict(given == "c", hint,
                   "right: under the domain shift the argmax piles onto a few classes; the "
                   "per-class top k gives every class examples, most of them right.")


def _pairs_seen(name: str) -> int:
    from vlm_course import pretrained

    card = pretrained.card(name)
    return int(card["steps"]) * int(card["batch_size"])


def check_pairs_ratio(answer) -> Verdict:
    """Exercise 4: how many times more image-text pairs the shipped ``clip_tiny_shapeworld``
    saw in pre-training than chapter 07's ``frameworks_two_tower`` (from their cards; exact)."""
    hint = ("a card records 'steps' and 'batch_size' (pretrained.card(name)); pairs seen = "
            "steps x batch size. Divide the two.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    value = _number(answer)
    if value is None:
        return verdict(False, f"expected a number, got {type(answer).__name__}. " + hint)
    target = _pairs_seen("clip_tiny_shapeworld") / _pairs_seen("frameworks_two_tower")
    return verdict(math.isfinite(value) and abs(value - target) < 1e-9, hint,
                   "right: the same architecture needed that many more pairs before it could "
                   "name shapes, while colour was learned at the small budget already.")
