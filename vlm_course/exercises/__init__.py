"""Exercises that check themselves (every chapter).

Each chapter's exercises live in ``vlm_course.exercises.chNN`` as ``check_*`` functions. A check
takes the student's answer and returns a :class:`Verdict`: ``✓`` with a short confirmation, or
``✗`` with a hint that points at what to look at, never the answer itself. An answer left as
``...`` (the student edition's placeholder) gets "not answered yet".

In a notebook the check is the last line of its cell, so the verdict is displayed::

    answer = ...                      # the student's code (a solution cell in the full edition)
    check_star_colours(answer)        # ✓ or ✗ with a hint

With ``VLM_COURSE_CHECKS=strict`` (set by ``make test`` and ``make book``) a wrong answer raises
AssertionError instead, so CI proves every shipped solution right.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Verdict", "verdict", "unanswered", "strict"]

_NOT_GIVEN = object()


def strict() -> bool:
    """True when ``VLM_COURSE_CHECKS=strict``: a wrong answer raises instead of giving a hint."""
    return os.environ.get("VLM_COURSE_CHECKS", "").strip().lower() == "strict"


@dataclass(frozen=True)
class Verdict:
    """The result of one check: ``ok`` (truthy when right) and the ``message`` shown."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✓ " if self.ok else "✗ ") + self.message

    def _repr_markdown_(self) -> str:
        return ("✓ **Correct.** " if self.ok else "✗ **Not yet.** ") + self.message


def unanswered(answer) -> bool:
    """True for the placeholder ``...`` (or None) a student has not replaced yet."""
    return answer is Ellipsis or answer is None


def verdict(ok: bool, hint: str, praise: str = "", answer=_NOT_GIVEN) -> Verdict:
    """Build a check's result. ``ok``: whether the answer is right; ``hint``: what to look at
    when it is not; ``praise``: an optional line that deepens the point when it is right.
    Pass the student's ``answer`` to turn the placeholder ``...`` into "not answered yet".
    Raises AssertionError for a wrong answer when :func:`strict` is on."""
    if not isinstance(hint, str) or not hint:
        raise ValueError(f"hint: expected a non-empty string, got {hint!r}")
    if answer is not _NOT_GIVEN and unanswered(answer):
        result = Verdict(False, "not answered yet: replace `...` with your answer and run the "
                                "cell again.")
    else:
        result = Verdict(bool(ok), (praise or "right.") if ok else hint)
    if strict() and not result.ok:
        raise AssertionError(f"exercise check failed: {result.message}")
    return result
