"""Chapter 02's exercise checks: a right answer passes, a wrong one and ``...`` do not, and
strict mode (VLM_COURSE_CHECKS=strict) raises on the wrong one."""

from __future__ import annotations

import pytest
import torch

from vlm_course.exercises import ch02


def spreads(images, labels):
    """(residual, plain) gradient spreads of the depth-4 nets, written out as the chapter does."""
    from vlm_course.models.resnet import ResNet, ResNetConfig
    from vlm_course.settings import seed_everything

    out = []
    for skip in (True, False):
        seed_everything(0)
        net = ResNet(ResNetConfig(layers=(4,), width=16, block="basic", image_size=32, pool="avg",
                                  output_dim=8, resnet_d=False, skip=skip, zero_init_last=False))
        torch.nn.functional.cross_entropy(net(images), labels).backward()
        norms = [blk.conv1.weight.grad.norm().item() for blk in net.stages[0]]
        out.append(max(norms) / min(norms))
    return tuple(out)


gen = torch.Generator().manual_seed(0)
IMAGES = torch.randn(16, 3, 32, 32, generator=gen)
LABELS = torch.randint(0, 8, (16,), generator=gen)
SPREADS = spreads(IMAGES, LABELS)
EOS_ID = 49407                              # Hugging Face's default, absent from our vocabulary

# (check, right answer, wrong answer, extra arguments)
CASES = [
    (ch02.check_depth4_spread, SPREADS, (SPREADS[0], SPREADS[1] * 2), (IMAGES, LABELS)),
    (ch02.check_zero_init, "b", "c", ()),
    (ch02.check_gap_position, "a", "c", ()),
    (ch02.check_mean_query, "c", "a", ()),
    (ch02.check_position_task, "b", "a", ()),
    (ch02.check_postnorm_warmup, "b", "a", ()),
    (ch02.check_left_padding, "c", "a", ()),
    (ch02.check_missing_eos, 0, 5, ()),
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


def test_missing_eos_position_is_what_argmax_returns():
    from vlm_course.text import Tokenizer
    from vlm_course.world import WorldConfig

    tok = Tokenizer.from_world(WorldConfig())
    ids = tok(["a red circle", "two objects"], context_length=16)["input_ids"]
    assert EOS_ID not in ids and tok.vocab_size < EOS_ID
    pooled = (ids == EOS_ID).int().argmax(-1)
    assert ch02.check_missing_eos(int(pooled[0])).ok and ch02.check_missing_eos(int(pooled[1])).ok


def test_depth4_spread_rejects_a_single_number_and_leaves_the_rng_alone():
    assert not ch02.check_depth4_spread(1.5, IMAGES, LABELS).ok
    state = torch.random.get_rng_state()
    ch02.check_depth4_spread(SPREADS, IMAGES, LABELS)
    assert torch.equal(state, torch.random.get_rng_state())
