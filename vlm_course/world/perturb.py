"""Word-order perturbations of captions: the same words, another meaning (ARO's NegCLIP).

Chapter 06 (alignment objectives).  Yuksekgonul et al. (2023, "When and why vision-language
models behave like bags-of-words") add to every training batch a perturbed copy of each caption —
the same words in another order — as extra hard negatives ("NegCLIP").  A batch of ShapeWorld
scenes almost never holds a caption that differs from another scene's only in which colour goes
with which shape, or in which object is left of which; these swaps supply them.

:func:`swap_words` trades two colour words, two shape words, or both (which, for a relation
caption, swaps its two arguments): "a large red circle left of a blue square" ->
"a large blue circle left of a red square" / "a large red square left of a blue circle" /
"a large blue square left of a red circle".  The swap may happen to be true of a scene (two
objects of one colour); whoever uses it as a negative must check, e.g. with
:func:`vlm_course.world.grounding.caption_truth`.
"""

from __future__ import annotations

import random

from .captions import fix_articles
from .config import WorldConfig

__all__ = ["SWAPS", "swap_words"]

#: What :func:`swap_words` may trade: two colour words, two shape words, or both pairs.
SWAPS = ("colour", "shape", "both")


def swap_words(caption: str, cfg: WorldConfig, rng: random.Random,
               kinds: tuple[str, ...] = SWAPS) -> str | None:
    """A caption with the same words (articles re-agreed) and a different structure, or None.

    The first two distinct colour words trade places ("colour"), or the first two distinct shape
    words ("shape"), or both ("both"); ``rng`` picks among the ``kinds`` the caption allows.
    Returns None when the caption has no such pair (e.g. one object).  Raises TypeError for a
    non-str caption and ValueError for an unknown kind.
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption: expected a str, got {type(caption).__name__}")
    unknown = [k for k in kinds if k not in SWAPS]
    if isinstance(kinds, str) or unknown or not kinds:
        raise ValueError(f"kinds: expected a non-empty tuple of {SWAPS}, got {kinds!r}")
    words = ["a" if w == "an" else w for w in caption.split()]
    slots = {}
    for key, vocab in (("colour", cfg.colours), ("shape", cfg.shapes)):
        at = [i for i, w in enumerate(words) if w.rstrip(",:") in vocab]
        pair = next(((i, j) for i in at for j in at if i < j and words[i] != words[j]), None)
        if pair is not None:
            slots[key] = pair
    allowed = [k for k in kinds if (k == "both" and len(slots) == 2) or k in slots]
    if not allowed:
        return None
    choice = rng.choice(allowed)
    for key in (("colour", "shape") if choice == "both" else (choice,)):
        i, j = slots[key]
        words[i], words[j] = words[j], words[i]
    return fix_articles(" ".join(words))
