"""Patchify and the CLIP-style Vision Transformer (chapter 02): behaviour and bad input."""

from __future__ import annotations

import pytest
import torch

from vlm_course.models import VisionTransformer, ViTConfig, patchify, unpatchify


def test_patchify_order_is_row_major_grid_and_channels_last():
    x = torch.rand(2, 3, 16, 24)
    p = patchify(x, 8)
    assert p.shape == (2, 6, 8 * 8 * 3)
    torch.testing.assert_close(p[:, 0], x[:, :, :8, :8].permute(0, 2, 3, 1).reshape(2, -1))
    torch.testing.assert_close(p[:, 1], x[:, :, :8, 8:16].permute(0, 2, 3, 1).reshape(2, -1))
    torch.testing.assert_close(p[:, 3], x[:, :, 8:, :8].permute(0, 2, 3, 1).reshape(2, -1))


def test_unpatchify_inverts_patchify():
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(unpatchify(patchify(x, 8), 8), x, rtol=0, atol=0)


def test_linear_patch_embedding_equals_a_strided_convolution():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny())
    x = torch.rand(2, 3, 64, 64)
    D = vit.cfg.width
    conv = torch.nn.Conv2d(3, D, 8, stride=8, bias=False)
    with torch.no_grad():  # Linear weight (D, P*P*C) -> conv weight (D, C, P, P)
        conv.weight.copy_(vit.patch_embed.weight.reshape(D, 8, 8, 3).permute(0, 3, 1, 2))
    ref = conv(x).flatten(2).transpose(1, 2)  # (B, D, g, g) -> (B, N, D)
    torch.testing.assert_close(vit.patch_embed(vit.patchify(x)), ref, rtol=1e-5, atol=1e-5)


def test_named_stages_compose_to_forward():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    x = torch.rand(2, 3, 64, 64)
    patches = vit.patchify(x)
    tokens = vit.embed(patches)
    assert patches.shape == (2, 64, 192) and tokens.shape == (2, 65, 64)
    feats, maps = vit.forward_features(tokens, return_attention=True)
    assert feats.shape == (2, 65, 64) and len(maps) == 2 and maps[0].shape == (2, 4, 65, 65)
    torch.testing.assert_close(vit.pool(feats), vit(x))


def test_ln_pre_normalises_tokens_before_the_encoder():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny())
    t = vit.ln_pre(vit.embed(vit.patchify(torch.rand(2, 3, 64, 64) * 50)))
    torch.testing.assert_close(t.mean(-1), torch.zeros(2, 65), atol=1e-5, rtol=0)


def test_output_depends_on_patch_order_through_position_embeddings():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    p = vit.patchify(torch.rand(1, 3, 64, 64))
    shuffled = p[:, torch.randperm(64)]
    assert not torch.allclose(vit.pool(vit.forward_features(vit.embed(p))),
                              vit.pool(vit.forward_features(vit.embed(shuffled))))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda v: v(torch.rand(3, 64, 64)),
         r"images must have shape \(B, C=3, H, W\), got \(3, 64, 64\)"),
        (lambda v: v(torch.rand(1, 1, 64, 64)), r"C=3.*got \(1, 1, 64, 64\)"),
        (lambda v: v(torch.rand(1, 3, 60, 60)),
         r"divisible by patch_size=8, got \(H, W\) = \(60, 60\)"),
        (lambda v: v(torch.rand(1, 3, 32, 32)), r"\(B, 3, 64, 64\).*got \(1, 3, 32, 32\)"),
        (lambda v: v.embed(torch.rand(1, 63, 192)),
         r"patches must have shape \(B, N=64, P\*P\*C=192\)"),
        (lambda v: v.pool(torch.rand(1, 65, 32)), r"tokens must have shape \(B, N \+ 1, D=64\)"),
        (lambda v: patchify(torch.rand(3, 16, 16), 8), r"images must have shape \(B, C, H, W\)"),
        (lambda v: unpatchify(torch.rand(1, 5, 192), 8), r"patches must have shape \(B, N=g\*g"),
        (lambda v: VisionTransformer(ViTConfig.tiny(image_size=60)), "divisible by cfg.patch_size"),
    ],
)
def test_bad_input_names_argument_and_shapes(call, match):
    vit = VisionTransformer(ViTConfig.tiny())
    with pytest.raises(ValueError, match=match):
        call(vit)
