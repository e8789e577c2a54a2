"""Attention (written out and fused), multi-head attention and transformer blocks (chapter 02)."""

from __future__ import annotations

import pytest
import torch

from vlm_course.models import (
    MultiHeadAttention,
    QuickGELU,
    ResidualAttentionBlock,
    Transformer,
    attention,
    attention_explicit,
    causal_mask,
    make_activation,
)


def qkv(B=2, h=3, N=5, M=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, h, N, d, generator=g), torch.randn(B, h, M, d, generator=g),
            torch.randn(B, h, M, d, generator=g))


def test_weights_are_distributions_and_causal_mask_blocks_the_future():
    q, k, v = qkv()
    out, w = attention_explicit(q, k, v, causal_mask(5))
    assert out.shape == (2, 3, 5, 4) and w.shape == (2, 3, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))
    assert (w.triu(1) == 0).all()  # no weight on later tokens
    torch.testing.assert_close(out[..., 0, :], v[..., 0, :])  # the first token sees only itself


def test_boolean_and_additive_masks_mean_the_same():
    q, k, v = qkv()
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    torch.testing.assert_close(attention_explicit(q, k, v, keep)[0],
                               attention_explicit(q, k, v, causal_mask(5))[0])


def test_fast_path_returns_weights_only_when_asked():
    q, k, v = qkv(N=3, M=6)
    out, w = attention(q, k, v)
    assert w is None and out.shape == (2, 3, 3, 4)
    out2, w2 = attention(q, k, v, need_weights=True)
    assert w2.shape == (2, 3, 3, 6)
    torch.testing.assert_close(out, out2)


def test_multi_head_attention_weights_and_cross_attention_shapes():
    mha = MultiHeadAttention(16, 4)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    y, w = mha(x, ctx, need_weights=True)
    assert y.shape == (2, 5, 16) and w.shape == (2, 4, 5, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 5))


def test_quick_gelu_matches_the_reference_and_approximates_gelu():
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    ours = QuickGELU()(x)
    transformers = pytest.importorskip("transformers.activations")
    torch.testing.assert_close(ours, transformers.ACT2FN["quick_gelu"](x))
    gap = (ours - torch.nn.functional.gelu(x)).abs()
    assert gap.max() < 0.021 and gap[x.abs() > 6].max() < 3e-4  # an approximation of exact GELU
    assert gap.max() > 0.01  # ... and not GELU itself


def test_activation_names():
    assert isinstance(make_activation("gelu"), torch.nn.GELU)
    assert isinstance(make_activation("quick_gelu"), QuickGELU)
    with pytest.raises(ValueError,
                       match=r"activation must be one of \('gelu', 'quick_gelu'\), got 'relu6'"):
        make_activation("relu6")


def test_pre_norm_keeps_an_identity_path_post_norm_normalises_the_output():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16) * 10 + 3
    pre = ResidualAttentionBlock(16, 2)
    post = ResidualAttentionBlock(16, 2, norm_first=False)
    with torch.no_grad():
        for blk in (pre, post):
            blk.attn.out_proj.weight.zero_(), blk.attn.out_proj.bias.zero_()
            blk.mlp.c_proj.weight.zero_(), blk.mlp.c_proj.bias.zero_()
        torch.testing.assert_close(pre(x)[0], x)  # zero branches: pre-norm block is the identity
        y = post(x)[0]  # post-norm output is always layer-normalised
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)


def test_transformer_returns_one_attention_map_per_layer():
    t = Transformer(16, 3, 2)
    y, maps = t(torch.randn(2, 4, 16), return_attention=True)
    assert y.shape == (2, 4, 16) and len(maps) == 3 and maps[0].shape == (2, 2, 4, 4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: attention(torch.randn(2, 5, 4), *qkv()[1:]), r"q must have shape \(B, h, N, d\)"),
        (lambda: attention(*qkv()[:2], torch.randn(2, 3, 6, 4)),
         r"k and v must agree on \(B, h, M\): got k \(2, 3, 5, 4\) and v \(2, 3, 6, 4\)"),
        (lambda: attention(qkv()[0][..., :3], *qkv()[1:]),
         r"q must have shape \(B, h, N, d\) matching k's .* got \(2, 3, 5, 3\)"),
        (lambda: attention(*qkv(), torch.zeros(4, 4)),
         r"attn_mask must broadcast to \(B, h, N, M\)"),
        (lambda: attention_explicit(*qkv(), torch.zeros(4, 5, 5)),
         r"attn_mask must broadcast to \(B, h, N, M\) = \(2, 3, 5, 5\), got \(4, 5, 5\)"),
        (lambda: MultiHeadAttention(10, 3), "dim must be divisible by heads, got dim=10, heads=3"),
        (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 5, 6)),
         r"x must have shape \(B, N, D=8\)"),
        (lambda: MultiHeadAttention(8, 2)(torch.randn(5, 8)), r"got \(5, 8\)"),
        (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 5, 8), torch.randn(3, 4, 8)),
         r"context must have shape \(B=2, M, D=8\)"),
        (lambda: Transformer(8, 0, 2), "layers must be >= 1, got 0"),
        (lambda: Transformer(8, 1, 2)(torch.randn(2, 3, 4)), r"x must have shape \(B, N, D=8\)"),
    ],
)
def test_bad_input_names_argument_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()
