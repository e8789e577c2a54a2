"""Deterministic misspellings: one typo in the middle of a word.

Chapter 07 (pre-training frameworks).  A model with a word vocabulary (CLIP's tokenizer) turns a
word it does not know into ``[UNK]``, so a single typo erases the word; a model that reads pixels
(CLIPPO, Tschannen et al. 2023) sees a picture close to the right word.  These typos make the
comparison measurable: each kind changes one letter position at the middle of the word.

* ``"swap"`` — two neighbouring letters change places: ``circle -> cicrle``, ``red -> rde``
  (the first differing pair from the middle on: ``green -> grene``);
* ``"drop"`` — one letter is left out: ``circle -> cirle``;
* ``"double"`` — one letter is typed twice: ``circle -> cirrcle``.

Words of fewer than three letters (and a swap in a word of one repeated letter) are returned
unchanged.
"""

from __future__ import annotations

__all__ = ["TYPOS", "misspell"]

TYPOS = ("swap", "drop", "double")


def misspell(word: str, kind: str = "swap") -> str:
    """``word`` with one typo of ``kind`` (see the module docstring) at letter ``(len - 1) // 2``.

    Raises TypeError for a non-str ``word``; ValueError for an unknown ``kind``.
    """
    if not isinstance(word, str):
        raise TypeError(f"word: expected a str, got {type(word).__name__}")
    if kind not in TYPOS:
        raise ValueError(f"kind: expected one of {TYPOS}, got {kind!r}")
    if len(word) < 3:
        return word
    i = (len(word) - 1) // 2
    if kind == "swap":   # the first neighbours from the middle on that differ (green -> gerne)
        order = list(range(i, len(word) - 1)) + list(range(i - 1, -1, -1))
        j = next((j for j in order if word[j] != word[j + 1]), None)
        return word if j is None else word[:j] + word[j + 1] + word[j] + word[j + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i + 1] + word[i] + word[i + 1:]
