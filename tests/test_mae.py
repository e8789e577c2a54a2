"""The masked autoencoder of chapter 05: stages, invariants, the encoder's cost, errors.

Oracles: the masking and the loss are tested against Hugging Face in test_masking.py and
test_generative.py; here the model's stages are checked to be those functions, and the fixed
position embeddings against transformers' ``build_2d_sinusoidal_position_embedding``.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vlm_course.models.mae import MAEConfig, MaskedAutoencoder, sincos_position_embedding
from vlm_course.models.vit import ViTConfig
from vlm_course.objectives.generative import mae_loss
from vlm_course.objectives.masking import random_masking


def _model(**overrides) -> MaskedAutoencoder:
    torch.manual_seed(0)
    enc = ViTConfig(image_size=24, patch_size=4, width=32, layers=2, heads=4)
    return MaskedAutoencoder(MAEConfig(encoder=enc, decoder_width=16, decoder_layers=1,
                                       **overrides))


def _images(b=3, s=24, seed=0):
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(seed))


def test_forward_shapes_loss_and_gradients():
    model = _model()
    out = model(_images(), generator=torch.Generator().manual_seed(0))
    assert out.pred.shape == (3, 36, 48) and out.mask.shape == (3, 36)
    assert torch.all(out.mask.sum(1) == 27) and torch.isfinite(out.loss)
    out.loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert len(trainable) == len(list(model.parameters())) > 20  # nothing frozen ...
    fixed = {"encoder.proj", "encoder.positional_embedding", "decoder_pos_embed"}
    assert fixed <= set(dict(model.named_buffers())) <= set(model.state_dict())  # fixed: buffers
    assert not fixed & {n for n, _ in model.named_parameters()}
    torch.testing.assert_close(model.encoder.proj, torch.eye(32))


def test_stages_are_the_chapter_functions():
    model = _model(norm_pix_loss=True).eval()
    images = _images()
    noise = torch.rand(3, 36, generator=torch.Generator().manual_seed(5))
    out = model(images, noise=noise)
    enc = model.encoder
    tokens = enc.patch_embed(model.patchify(images)) + enc.positional_embedding[1:]
    expected = random_masking(tokens, 0.75, noise=noise)
    torch.testing.assert_close(out.mask, expected.mask, rtol=0, atol=0)
    torch.testing.assert_close(out.ids_restore, expected.ids_restore, rtol=0, atol=0)
    target = model.patchify(images)
    torch.testing.assert_close(out.loss, mae_loss(out.pred, target, out.mask, norm_pix_loss=True))
    torch.testing.assert_close(model.forward_loss(images, out.pred, out.mask), out.loss)


def test_encoder_never_sees_removed_patches():
    model = _model().eval()
    images = _images()
    noise = torch.rand(3, 36, generator=torch.Generator().manual_seed(2))
    latent, mask, _ = model.forward_encoder(images, 0.75, noise=noise)
    assert latent.shape == (3, 1 + 9, 32)
    removed = mask.bool().reshape(3, 6, 6).repeat_interleave(4, 1).repeat_interleave(4, 2)
    changed = images.clone()
    changed[removed[:, None].expand_as(images)] = 0.5  # rewrite every removed pixel
    latent2, _, _ = model.forward_encoder(changed, 0.75, noise=noise)
    torch.testing.assert_close(latent2, latent, rtol=0, atol=0)
    changed[~removed[:, None].expand_as(images)] = 0.5  # now a visible pixel changes too
    assert not torch.allclose(model.forward_encoder(changed, 0.75, noise=noise)[0], latent)


def _encoder_flops(model, images, ratio):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.forward_encoder(images, ratio, generator=torch.Generator().manual_seed(0))
    return counter.get_total_flops()


def test_encoder_cost_scales_with_visible_patches():
    model = _model().eval()
    images = _images(8)
    flops = {r: _encoder_flops(model, images, r) for r in (0.0, 0.5, 0.75, 0.9)}
    assert flops[0.0] > flops[0.5] > flops[0.75] > flops[0.9]
    # 37 tokens at ratio 0, 1 + 9 at 0.75: the blocks cost ~3.7x less (attention even more);
    # only the patch embedding, applied before masking, does not shrink
    assert flops[0.0] / flops[0.75] > 3.0
    tokens_seen = []
    hook = model.encoder.transformer.register_forward_hook(
        lambda mod, args, out: tokens_seen.append(args[0].shape[1]))
    for ratio in (0.0, 0.5, 0.75, 0.9):
        model.forward_encoder(images, ratio)
    hook.remove()
    assert tokens_seen == [37, 19, 10, 4]


def test_seeded_determinism_and_batch_independence_in_eval():
    model = _model().eval()
    images = _images(4)
    noise = torch.rand(4, 36, generator=torch.Generator().manual_seed(9))
    a = model(images, noise=noise).pred
    b = model(images, noise=noise).pred
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    part = model(images[:2], noise=noise[:2]).pred
    torch.testing.assert_close(part, a[:2], rtol=1e-5, atol=1e-6)
    feats = model.encode_image(images)
    assert feats.shape == (4, 32) and torch.isfinite(feats).all()


def test_position_embeddings_match_transformers_sincos():
    pytest.importorskip("transformers")
    from transformers.models.vit_mae.modeling_vit_mae import (
        build_2d_sinusoidal_position_embedding,
    )

    ours = sincos_position_embedding(6, 32)
    ref = build_2d_sinusoidal_position_embedding(6, 6, 32, cls_token=True)
    torch.testing.assert_close(ours, ref)
    model = _model()
    torch.testing.assert_close(model.decoder_pos_embed.data, sincos_position_embedding(6, 16))
    with pytest.raises(ValueError, match="dim must be divisible by 4"):
        sincos_position_embedding(6, 30)


def test_pixels_undo_the_patch_normalisation():
    model = _model(norm_pix_loss=True)
    images = _images()
    target = model.patchify(images)
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    normalised = (target - mean) / (var + 1e-6) ** 0.5
    torch.testing.assert_close(model.pixels(images, normalised), target, rtol=1e-4, atol=1e-5)
    assert model.pixels(images, target) is not target
    assert _model().pixels(images, target) is target


def test_errors_name_the_argument():
    model = _model()
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 24, 24\)"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="mask_ratio must lie in"):
        model(_images(), 1.0)
    with pytest.raises(ValueError, match="keeps no token"):
        model(_images(), 0.99)
    with pytest.raises(ValueError, match="ids_restore"):
        model.forward_decoder(torch.zeros(2, 10, 32), torch.zeros(2, 35, dtype=torch.long))
    with pytest.raises(ValueError, match="decoder_width must be divisible"):
        MAEConfig(decoder_width=30, decoder_heads=4)
    with pytest.raises(ValueError, match="decoder_layers"):
        MAEConfig(decoder_layers=0)
    with pytest.raises(ValueError, match="mask_ratio"):
        MAEConfig(mask_ratio=1.0)
    with pytest.raises(TypeError, match="config must be an MAEConfig"):
        MaskedAutoencoder(ViTConfig())


def test_config_round_trip():
    cfg = MAEConfig.tiny(norm_pix_loss=True)
    assert MAEConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.encoder.output_dim == cfg.encoder.width
