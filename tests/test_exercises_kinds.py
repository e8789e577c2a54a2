"""The answer kinds every chapter's checks use (vlm_course.exercises.kinds): right, wrong, the
placeholder ``...``, answers of the wrong kind (never a TypeError), and strict mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlm_course.exercises.kinds import choice, number, same_set


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)


def test_choice():
    assert choice("B", "b", "abc", "hint").ok and choice(" b ", "b", "abc", "hint").ok
    wrong = choice("a", "b", "abc", "look at x", praise="yes")
    assert not wrong.ok and wrong.message == "look at x"
    assert "not answered yet" in choice(..., "b", "abc", "hint").message
    odd = choice(2, "b", {"a": "one", "b": "two"}, "hint")
    assert not odd.ok and "'a', 'b'" in odd.message
    assert choice("b", "b", "abc", "hint", praise="deeper").message == "deeper"
    with pytest.raises(ValueError, match="right"):
        choice("a", "d", "abc", "hint")


def test_number():
    assert number(13, 13, "hint").ok and not number(12, 13, "hint").ok
    assert number(np.float32(0.5), 0.52, "hint", tol=0.05).ok
    assert number(torch.tensor(10.04), 10.0, "hint", rel=0.01).ok
    assert not number(10.2, 10.0, "hint", rel=0.01).ok
    for odd in ("13", [13, 14], torch.ones(2), float("nan"), {"a": 1}):
        result = number(odd, 13, "hint")
        assert not result.ok and "expected a single number" in result.message
    assert "not answered yet" in number(..., 1, "hint").message


def test_same_set():
    assert same_set(["b", "a", "a"], ("a", "b"), "hint").ok
    assert not same_set(["a"], ("a", "b"), "hint").ok
    for odd in ("ab", 3, {"a": 1}, [["a"]]):
        assert not same_set(odd, ("a", "b"), "hint").ok
    assert "not answered yet" in same_set(..., ("a",), "hint").message


def test_strict_mode_raises_on_wrong_and_on_unanswered(monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    assert choice("b", "b", "abc", "hint").ok and number(1, 1, "hint").ok
    for call in (lambda: choice("a", "b", "abc", "hint"), lambda: number(2, 1, "hint"),
                 lambda: same_set(["x"], ["y"], "hint"), lambda: number(..., 1, "hint")):
        with pytest.raises(AssertionError, match="exercise check failed"):
            call()
