"""Generative losses of chapter 05 against their reference implementations.

Oracles: ``ViTMAEForPreTraining``'s loss on the same predictions, targets and mask (with and
without ``norm_pix_loss``; forward and gradient), open_clip's ``CoCaLoss`` caption term, and
``F.cross_entropy`` for masked language modelling.  Errors name the argument.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlm_course.models.vit import patchify
from vlm_course.objectives.generative import (
    caption_loss,
    mae_loss,
    masked_cross_modal_loss,
    mlm_loss,
    teacher_forcing,
)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_mae_loss_matches_vitmae_for_pretraining(norm_pix_loss):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ViTMAEConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        image_size=24, patch_size=4, decoder_hidden_size=16, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=32, mask_ratio=0.75,
        norm_pix_loss=norm_pix_loss)
    torch.manual_seed(0)
    hf = transformers.ViTMAEForPreTraining(cfg).eval()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 24, 24, generator=g)
    noise = torch.rand(3, 36, generator=g)
    out = hf(pixel_values=images, noise=noise)
    target = patchify(images, 4)
    torch.testing.assert_close(target, hf.patchify(images), rtol=0, atol=0)
    pred = out.logits.detach().clone().requires_grad_(True)
    ours = mae_loss(pred, target, out.mask, norm_pix_loss=norm_pix_loss)
    torch.testing.assert_close(ours, out.loss)
    (hf_grad,) = torch.autograd.grad(out.loss, out.logits)
    (our_grad,) = torch.autograd.grad(ours, pred)
    torch.testing.assert_close(our_grad, hf_grad)
    assert hf_grad[out.mask == 0].abs().max() == 0  # visible patches get no gradient


def test_mae_loss_counts_only_removed_patches():
    target = torch.zeros(2, 4, 3)
    pred = torch.zeros(2, 4, 3)
    pred[:, :2] = 10.0  # wrong, but on visible patches
    pred[:, 2:] = 1.0
    mask = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    assert mae_loss(pred, target, mask) == 1.0


@pytest.mark.parametrize("args, error, match", [
    ((torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(2)), ValueError, "pred must have shape"),
    ((torch.zeros(2, 4, 3), torch.zeros(2, 4, 2), torch.ones(2, 4)), ValueError,
     "pred and target must have the same shape"),
    ((torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.ones(2, 5)), ValueError,
     r"mask must have shape \(B, N\) = \(2, 4\)"),
    ((torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.zeros(2, 4)), ValueError,
     "mask removes no patch"),
    ((torch.zeros(2, 4, 3, dtype=torch.long), torch.zeros(2, 4, 3), torch.ones(2, 4)), TypeError,
     "pred must be a float"),
])
def test_mae_loss_errors(args, error, match):
    with pytest.raises(error, match=match):
        mae_loss(*args)


def test_mlm_loss_is_cross_entropy_at_chosen_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g, requires_grad=True)
    labels = torch.randint(11, (3, 7), generator=g)
    labels[torch.rand(3, 7, generator=g) < 0.6] = -100
    expected = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1))
    torch.testing.assert_close(mlm_loss(logits, labels), expected)
    none = mlm_loss(logits, torch.full((3, 7), -100))
    assert none == 0 and none.requires_grad  # a batch that chose nothing
    with pytest.raises(ValueError, match=r"labels must have shape \(B, L\) = \(3, 7\)"):
        mlm_loss(logits, labels[:, :5])
    with pytest.raises(TypeError, match="labels must be an integer"):
        mlm_loss(logits, labels.float())


def test_masked_cross_modal_loss_is_the_weighted_sum():
    g = torch.Generator().manual_seed(2)
    pred, patches = torch.randn(2, 9, 12, generator=g), torch.randn(2, 9, 12, generator=g)
    mask = (torch.rand(2, 9, generator=g) < 0.5).float()
    mask[:, 0] = 1
    logits = torch.randn(2, 6, 20, generator=g)
    labels = torch.randint(20, (2, 6), generator=g)
    out = masked_cross_modal_loss(pred, patches, mask, logits, labels, image_weight=0.5,
                                  text_weight=2.0)
    torch.testing.assert_close(out.image, mae_loss(pred, patches, mask))
    torch.testing.assert_close(out.text, mlm_loss(logits, labels))
    torch.testing.assert_close(out.loss, 0.5 * out.image + 2.0 * out.text)
    with pytest.raises(ValueError, match="image_weight must be >= 0"):
        masked_cross_modal_loss(pred, patches, mask, logits, labels, image_weight=-1.0)
    with pytest.raises(ValueError, match="share the batch size"):
        masked_cross_modal_loss(pred, patches, mask, logits[:1], labels[:1])


def test_caption_loss_matches_open_clip_coca_caption_term():
    open_clip_loss = pytest.importorskip("open_clip.loss")
    g = torch.Generator().manual_seed(4)
    B, L, V, D = 4, 9, 30, 8
    ids = torch.randint(5, V, (B, L + 1), generator=g)
    ids[:, 0] = 1
    for row, n in enumerate((10, 6, 4, 8)):
        ids[row, n - 1] = 2
        ids[row, n:] = 0
    inputs, targets = teacher_forcing(ids)
    assert torch.equal(inputs, ids[:, :-1]) and torch.equal(targets, ids[:, 1:])
    logits = torch.randn(B, L, V, generator=g, requires_grad=True)
    coca = open_clip_loss.CoCaLoss(caption_loss_weight=1.0, clip_loss_weight=0.0, pad_id=0)
    feats = F.normalize(torch.randn(B, D, generator=g), dim=-1)
    _, reference = coca(feats, feats, logits, targets, torch.tensor(10.0))
    ours = caption_loss(logits, targets, pad_id=0)
    torch.testing.assert_close(ours, reference)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(g_ours, g_ref)
    assert g_ours[targets == 0].abs().max() == 0  # padding never counts


def test_caption_and_teacher_forcing_errors():
    logits = torch.zeros(2, 5, 7)
    with pytest.raises(ValueError, match="targets are all padding"):
        caption_loss(logits, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets must have shape \(B, L\) = \(2, 5\)"):
        caption_loss(logits, torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must have shape"):
        caption_loss(torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must have shape \(B, L >= 2\)"):
        teacher_forcing(torch.ones(2, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="input_ids must be an integer"):
        teacher_forcing(torch.ones(2, 4))
