"""The kinds of answer a chapter's checks compare: a choice, a number, a set (every chapter).

Each helper turns a student's answer into a :class:`~vlm_course.exercises.Verdict` through
:func:`~vlm_course.exercises.verdict`, so the placeholder ``...`` reads "not answered yet" and
``VLM_COURSE_CHECKS=strict`` makes a wrong answer raise. An answer of the wrong kind (a list where
a number was asked, a letter that is not an option) is wrong, with a message that says what kind
of answer the exercise expects; it never raises a TypeError in the student's face.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from vlm_course.exercises import Verdict, unanswered, verdict

__all__ = ["choice", "number", "same_set"]


def choice(answer, right: str, options: Mapping[str, str] | Iterable[str], hint: str,
           praise: str = "") -> Verdict:
    """Check a multiple-choice answer: one option key (``"b"``), compared case-insensitively.

    options: the valid keys (a mapping key -> text, or the keys themselves); ``right`` is one of
    them. An answer that is not one of the keys gets a message listing them.
    Raises ValueError when ``right`` is not among ``options`` (a bug in the check, not the answer).
    """
    keys = [str(k).strip().lower() for k in options]
    right = str(right).strip().lower()
    if right not in keys:
        raise ValueError(f"right: expected one of {keys}, got {right!r}")
    if unanswered(answer):
        return verdict(False, hint, praise, answer=answer)
    given = answer.strip().lower() if isinstance(answer, str) else None
    if given not in keys:
        listed = ", ".join(repr(k) for k in keys)
        return verdict(False, f"answer with one of {listed} (a string), got {answer!r}. " + hint)
    return verdict(given == right, hint, praise, answer=answer)


def _as_float(answer) -> float | None:
    """``float(answer)`` for ints, floats, NumPy scalars and one-element tensors; None otherwise."""
    if isinstance(answer, (str, bytes)) or answer is None:
        return None
    try:
        return float(answer)
    except Exception:  # noqa: BLE001 - arrays, tensors of many elements, arbitrary objects
        return None


def number(answer, target: float, hint: str, praise: str = "", *, tol: float = 0.0,
           rel: float = 0.0) -> Verdict:
    """Check a number: right when ``|answer - target| <= max(tol, rel * |target|)``.

    answer: an int, float, NumPy scalar or one-element tensor. With ``tol = rel = 0`` the answer
    must equal the target exactly (use that for counts). Anything else is wrong, with a message
    saying a number was expected.
    """
    if unanswered(answer):
        return verdict(False, hint, praise, answer=answer)
    value = _as_float(answer)
    if value is None or math.isnan(value):
        return verdict(False, f"expected a single number, got {type(answer).__name__} "
                              f"{answer!r}. " + hint)
    return verdict(abs(value - target) <= max(tol, rel * abs(target)), hint, praise)


def same_set(answer, target: Iterable, hint: str, praise: str = "") -> Verdict:
    """Check an unordered collection (list, tuple, set) against ``target``: same elements,
    order and repeats ignored. Strings are compared as given (``"red"`` is not ``"Red"``)."""
    if unanswered(answer):
        return verdict(False, hint, praise, answer=answer)
    if isinstance(answer, (str, bytes, Mapping)) or not isinstance(answer, Iterable):
        return verdict(False, f"expected a list or set, got {type(answer).__name__}. " + hint)
    try:
        given = set(answer)
    except TypeError:
        return verdict(False, "expected a list or set of plain values (strings, numbers). "
                              + hint)
    return verdict(given == set(target), hint, praise)
