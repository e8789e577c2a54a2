"""The pointing game (chapter 06): perfect, constant and random scorers; padding; errors."""

import pytest
import torch

from vlm_course.evaluation.pointing import pointing_game


def _targets(B=50, M=9, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    owner = torch.randint(0, M, (B, L), generator=g)
    t = torch.nn.functional.one_hot(owner, M).permute(0, 2, 1).bool()    # (B, M, L)
    t[:, :, 0] = False                                                   # word 0 names nothing
    return t


def test_perfect_scorer_wins_every_word():
    t = _targets()
    out = pointing_game(t.float(), t)
    assert out["accuracy"] == 1.0 and out["words"] == 50 * 5 and out["hits"] == 250
    assert abs(out["chance"] - 1 / 9) < 1e-6


def test_constant_and_random_scorers_are_at_chance():
    t = _targets(B=4000)
    # a constant scorer always points at region 0: right exactly when region 0 is the target
    const = pointing_game(torch.zeros(t.shape), t)
    assert const["accuracy"] == pytest.approx(float(t[:, 0, 1:].float().mean()), abs=1e-6)
    g = torch.Generator().manual_seed(1)
    rand = pointing_game(torch.rand(t.shape, generator=g), t)
    assert abs(rand["accuracy"] - rand["chance"]) < 0.01


def test_padded_regions_never_win():
    t = _targets()
    scores = t.float()
    scores[:, 8] = 100.0                          # region 8 scores highest for every word
    mask = torch.ones(50, 9, dtype=torch.bool)
    mask[:, 8] = False
    t2 = t.clone()
    t2[:, 8] = False
    assert pointing_game(scores, t2, mask)["accuracy"] == pointing_game(t2.float(), t2, mask)[
        "accuracy"]
    assert pointing_game(scores, t2)["accuracy"] == 0.0


@pytest.mark.parametrize("args, name", [
    ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)), "scores"),
    ((torch.zeros(2, 3, 4), torch.zeros(2, 3, 5, dtype=torch.bool)), "targets"),
    ((torch.zeros(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.bool)), "targets"),
    ((torch.zeros(2, 3, 4), torch.ones(2, 3, 4, dtype=torch.bool), torch.ones(2, 4)),
     "region_mask"),
])
def test_errors(args, name):
    with pytest.raises(ValueError, match=name):
        pointing_game(*args)
