"""Invariants every chapter-02 *part* must keep: output shape, finite outputs, a gradient for every
parameter, determinism under a seed, and eval outputs independent of the rest of the batch.
Whole towers and models are covered by the contract in ``tests/test_model_contract.py``."""

from __future__ import annotations

import pytest
import torch

from vlm_course.models import (
    AttentionPool2d,
    BasicBlock,
    Bottleneck,
    GlobalAvgPool,
    MultiHeadAttention,
    ResidualAttentionBlock,
    ResNet,
    ResNetConfig,
    Transformer,
)
from vlm_course.settings import seed_everything


def _images(c=3, s=64, b=4):
    return (torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(5)),)


# name -> (build, inputs, expected output shape); builds use zero_init_last=False where the
# zero-initialised BN would (by design) stop gradients into the residual branch at init.
CASES = {
    "MultiHeadAttention": (lambda: MultiHeadAttention(32, 4),
                           lambda: (torch.randn(4, 6, 32),), (4, 6, 32)),
    "ResidualAttentionBlock pre-norm": (lambda: ResidualAttentionBlock(32, 4),
                                        lambda: (torch.randn(4, 6, 32),), (4, 6, 32)),
    "ResidualAttentionBlock post-norm": (lambda: ResidualAttentionBlock(32, 4, norm_first=False),
                                         lambda: (torch.randn(4, 6, 32),), (4, 6, 32)),
    "Transformer": (lambda: Transformer(32, 2, 4, activation="quick_gelu"),
                    lambda: (torch.randn(4, 6, 32),), (4, 6, 32)),
    "BasicBlock stride 2": (lambda: BasicBlock(8, 16, 2), lambda: _images(8, 8), (4, 16, 4, 4)),
    "BasicBlock avg_down": (lambda: BasicBlock(8, 16, 2, avg_down=True),
                            lambda: _images(8, 8), (4, 16, 4, 4)),
    "BasicBlock plain": (lambda: BasicBlock(8, 16, 2, skip=False),
                         lambda: _images(8, 8), (4, 16, 4, 4)),
    "Bottleneck": (lambda: Bottleneck(16, 8, 2), lambda: _images(16, 8), (4, 32, 4, 4)),
    "Bottleneck avg_down": (lambda: Bottleneck(16, 8, 2, avg_down=True),
                            lambda: _images(16, 8), (4, 32, 4, 4)),
    "Bottleneck plain": (lambda: Bottleneck(16, 8, 1, skip=False),
                         lambda: _images(16, 8), (4, 32, 8, 8)),
    "GlobalAvgPool": (lambda: GlobalAvgPool(32, 16), lambda: _images(32, 4), (4, 16)),
    "AttentionPool2d": (lambda: AttentionPool2d(4, 32, 4, 16), lambda: _images(32, 4), (4, 16)),
}


def _out(y):
    return y[0] if isinstance(y, tuple) else y


@pytest.mark.parametrize("name", list(CASES))
def test_shape_finite_and_every_parameter_gets_a_gradient(name):
    build, inputs, shape = CASES[name]
    seed_everything(0)
    model = build().train()
    y = _out(model(*inputs()))
    assert tuple(y.shape) == shape
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


@pytest.mark.parametrize("name", list(CASES))
def test_deterministic_under_seed(name):
    build, inputs, _ = CASES[name]
    outs = []
    for _ in range(2):
        seed_everything(0)
        model = build().eval()
        with torch.no_grad():
            outs.append(_out(model(*inputs())))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_eval_output_independent_of_batch_composition(name):
    build, inputs, _ = CASES[name]
    seed_everything(0)
    model = build().eval()
    args = inputs()
    keep = torch.tensor([2, 0])
    with torch.no_grad():
        full = _out(model(*args))[keep]
        part = _out(model(*(a[keep] for a in args)))
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)


def test_resnet_zero_init_last_makes_residual_blocks_start_as_identity_branches():
    seed_everything(0)
    model = ResNet(ResNetConfig.tiny())
    last = [blk.last_bn().weight for stage in model.stages for blk in stage]
    assert all(bool((w == 0).all()) for w in last)
    y = model(*_images())
    y.sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in last)
