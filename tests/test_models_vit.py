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
    feats, maps = vit.forward_tokens(tokens, return_attention=True)
    assert feats.shape == (2, 65, 64) and len(maps) == 2 and maps[0].shape == (2, 4, 65, 65)
    torch.testing.assert_close(vit.forward_features(x), feats)
    torch.testing.assert_close(vit.forward_head(feats), vit(x))


def test_separable_embedding_stages_for_masked_modelling():
    """MAE adds positions before dropping patches and the class token after (chapter 05)."""
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    patches = vit.patchify(torch.rand(2, 3, 64, 64))
    x = vit.embed_patches(patches)  # (B, N, D), no position yet
    torch.testing.assert_close(x, patches @ vit.patch_embed.weight.T)
    assert vit.pos_embed.shape == (65, 64) and vit.pos_embed is vit.positional_embedding
    with_pos = vit.add_position(x)
    torch.testing.assert_close(with_pos - x, vit.pos_embed[1:].expand(2, -1, -1))
    torch.testing.assert_close(vit.prepend_class_token(with_pos), vit.embed(patches))
    kept = with_pos[:, [5, 17, 40]]  # a masked subset keeps its own positions
    tokens = vit.prepend_class_token(kept)
    assert tokens.shape == (2, 4, 64)
    torch.testing.assert_close(tokens[:, 0], (vit.class_embedding + vit.pos_embed[0]).expand(2, -1))
    assert vit.forward_tokens(tokens).shape == (2, 4, 64)


def test_non_square_images_use_a_rectangular_grid():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny(image_size=(32, 48))).eval()
    assert vit.cfg.grid == (4, 6) and vit.cfg.num_patches == 24
    x = torch.rand(2, 3, 32, 48)
    assert vit.forward_features(x).shape == (2, 25, 64) and vit(x).shape == (2, 64)
    patches = vit.patchify(x)
    torch.testing.assert_close(unpatchify(patches, 8, grid=(4, 6)), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 48\).*got \(2, 3, 48, 32\)"):
        vit(x.transpose(2, 3))
    with pytest.raises(ValueError, match=r"grid_size needs a square grid, got grid=\(4, 6\)"):
        _ = vit.cfg.grid_size


def test_ln_pre_sits_before_the_first_block():
    """Only a LayerNorm in front of the encoder makes the output blind to the tokens' scale."""
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    tokens = vit.embed(vit.patchify(torch.rand(2, 3, 64, 64)))
    with torch.no_grad():
        vit.ln_pre.bias.zero_()  # scale invariance is exact only without the shift ...
        vit.ln_pre.eps = 0.0  # ... and without the epsilon
        out = vit.forward_tokens(tokens)
        torch.testing.assert_close(vit.forward_tokens(7.0 * tokens), out, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out, vit.transformer(vit.ln_pre(tokens)))
        vit.ln_pre = torch.nn.Identity()  # remove it: the scale now changes the output
        assert not torch.allclose(vit.forward_tokens(7.0 * tokens), vit.forward_tokens(tokens),
                                  atol=1e-3)


def test_head_reads_only_the_class_token():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    feats = torch.randn(2, 65, 64)
    changed = feats.clone()
    changed[:, 1:] = torch.randn(2, 64, 64)
    torch.testing.assert_close(vit.forward_head(changed), vit.forward_head(feats))
    changed[:, 0] = torch.randn(2, 64)  # (a constant shift would vanish in ln_post)
    assert not torch.allclose(vit.forward_head(changed), vit.forward_head(feats))


def test_output_depends_on_patch_order_through_position_embeddings():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.tiny()).eval()
    p = vit.patchify(torch.rand(1, 3, 64, 64))
    shuffled = p[:, torch.randperm(64)]
    assert not torch.allclose(vit.forward_head(vit.forward_tokens(vit.embed(p))),
                              vit.forward_head(vit.forward_tokens(vit.embed(shuffled))))


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
        (lambda v: v.forward_head(torch.rand(1, 65, 32)),
         r"features must have shape \(B, 1 \+ N, D=64\), got \(1, 65, 32\)"),
        (lambda v: v.embed_patches(torch.rand(1, 64, 100)),
         r"patches must have shape \(B, N, P\*P\*C=192\), got \(1, 64, 100\)"),
        (lambda v: v.add_position(torch.rand(1, 63, 64)),
         r"tokens must have shape \(B, N=64, D=64\), got \(1, 63, 64\)"),
        (lambda v: v.prepend_class_token(torch.rand(1, 5, 32)),
         r"tokens must have shape \(B, n, D=64\), got \(1, 5, 32\)"),
        (lambda v: patchify(torch.rand(3, 16, 16), 8), r"images must have shape \(B, C, H, W\)"),
        (lambda v: unpatchify(torch.rand(1, 5, 192), 8), r"patches must have shape \(B, N=g\*g"),
        (lambda v: VisionTransformer(ViTConfig.tiny(image_size=60)),
         "cfg.image_size must be divisible by cfg.patch_size=8, got 60"),
        (lambda v: unpatchify(torch.rand(1, 24, 192), 8, grid=(4, 5)),
         r"patches must have shape \(B, N=4\*5, P\*P\*C=192\), got \(1, 24, 192\)"),
        (lambda v: ViTConfig(image_size=0), r"image_size must be positive, got 0"),
    ],
)
def test_bad_input_names_argument_and_shapes(call, match):
    vit = VisionTransformer(ViTConfig.tiny())
    with pytest.raises(ValueError, match=match):
        call(vit)


def test_config_of_the_wrong_type_is_a_type_error():
    from vlm_course.models import ResNetConfig

    with pytest.raises(TypeError, match="cfg must be a ViTConfig, got ResNetConfig"):
        VisionTransformer(ResNetConfig.tiny())
    with pytest.raises(TypeError, match=r"image_size must be an int or an \(H, W\) pair"):
        ViTConfig(image_size=(32, 32, 3))
