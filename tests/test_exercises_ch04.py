"""Chapter 04's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.optimize import brentq

from vlm_course.exercises import ch04

g = torch.Generator().manual_seed(2)
COS = 0.15 * torch.randn(8, 8, generator=g) + 0.3 * torch.eye(8)   # the chapter's toy cosines


def row_entropy(t: float) -> float:
    p = (COS / t).softmax(dim=1)
    return float(-(p * p.clamp_min(1e-12).log()).sum(dim=1).mean())


HALF_TAU = brentq(lambda t: row_entropy(t) - math.log(8) / 2, 0.005, 2)
TARGETS = list(range(512, 768))

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch04.check_chance_levels, (math.log(256), math.log(511)), (math.log(256),) * 2, ()),
    (ch04.check_half_entropy, HALF_TAU, 0.07, (COS,)),
    (ch04.check_longer_simclr, "b", "a", ()),
    (ch04.check_identical_captions, math.log(4), 0.0, ()),
    (ch04.check_siglip_init, 10.05, 5.0, ()),
    (ch04.check_local_loss, (524_288, TARGETS), (1024**2, TARGETS), ()),
]
IDS = [case[0].__name__ for case in CASES]


@pytest.mark.parametrize(("check", "right", "wrong", "extra"), CASES, ids=IDS)
def test_right_wrong_and_unanswered(check, right, wrong, extra, monkeypatch):
    monkeypatch.delenv("VLM_COURSE_CHECKS", raising=False)
    assert check(right, *extra).ok
    result = check(wrong, *extra)
    assert not result.ok and "not answered" not in result.message and result.message
    unanswered = check(..., *extra)
    assert not unanswered.ok and "not answered yet" in unanswered.message


@pytest.mark.parametrize(("check", "right", "wrong", "extra"), CASES, ids=IDS)
def test_strict_mode_raises_on_a_wrong_answer(check, right, wrong, extra, monkeypatch):
    monkeypatch.setenv("VLM_COURSE_CHECKS", "strict")
    assert check(right, *extra).ok
    with pytest.raises(AssertionError, match="exercise check failed"):
        check(wrong, *extra)


def test_local_loss_checks_both_parts():
    assert ch04.check_local_loss((524_288, torch.arange(512, 768))).ok
    wrong_targets = ch04.check_local_loss((524_288, list(range(256))))
    assert not wrong_targets.ok and "targets are not" in wrong_targets.message
    assert not ch04.check_local_loss(524_288).ok


def test_siglip_truth_is_the_hand_estimate():
    estimate = 10 + 63 * math.log1p(math.exp(-10))
    assert ch04.check_siglip_init(estimate).ok and abs(HALF_TAU - 0.089) < 0.005
