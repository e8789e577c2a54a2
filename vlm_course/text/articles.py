"""English text rules shared by every caption and prompt of the course: article agreement.

Chapter 03 (datasets).  ShapeWorld captions, zero-shot prompts and the captions of the real-image
sets (:mod:`vlm_course.datasets`) all write "a {name}" templates; :func:`fix_articles` makes the
article agree with the next word.  It lives in ``text/`` (not in ``world/``) because it is a rule
of the language, not of the toy world.
"""

from __future__ import annotations

import re

__all__ = ["fix_articles"]

_AN = re.compile(r"\ba (?=[aeiou])")


def fix_articles(text: str) -> str:
    """The article agrees with the next word: "a" becomes "an" before a vowel.

    "a photo of a orange" -> "a photo of an orange".  The one place the course applies this rule.

    Raises:
        TypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _AN.sub("an ", text)
