"""Alignment objectives (chapter 06): ITM loss, hard-negative sampling, region pooling,
region-word logits and focal loss, FILIP — oracles, invariants and errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from vlm_course.objectives.alignment import (
    filip_similarity,
    itm_loss,
    negative_probabilities,
    patch_tokens_to_map,
    pool_regions,
    region_word_logits,
    region_word_loss,
    sample_hard_negatives,
    sample_negatives,
    sigmoid_focal_loss,
)


# ----------------------------------------------------------------------------- ITM loss
def test_itm_loss_two_way_is_cross_entropy_and_one_way_is_bce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 2, generator=g, dtype=torch.float64)
    labels = torch.tensor([1] * 4 + [0] * 8)
    torch.testing.assert_close(itm_loss(logits, labels), F.cross_entropy(logits, labels))
    diff = logits[:, 1] - logits[:, 0]
    # a 2-way softmax is a sigmoid of the logit difference: the two forms agree
    torch.testing.assert_close(itm_loss(diff, labels),
                               F.binary_cross_entropy(diff.sigmoid(), labels.double()))
    torch.testing.assert_close(itm_loss(diff, labels.bool()), itm_loss(logits, labels))


def test_itm_loss_gradient_matches_cross_entropy():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(9, 2, generator=g, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0])
    itm_loss(a, labels).backward()
    F.cross_entropy(b, labels).backward()
    torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("logits, labels, name", [
    (torch.zeros(4, 3), torch.zeros(4), "logits"),
    (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4), "logits"),
    (torch.zeros(0, 2), torch.zeros(0), "logits"),
    (torch.zeros(4, 2), torch.zeros(5), "labels"),
    (torch.zeros(4, 2), torch.tensor([0, 1, 2, 0]), "labels"),
    ([0.0, 1.0], torch.zeros(2), "logits"),
])
def test_itm_loss_errors(logits, labels, name):
    with pytest.raises((TypeError, ValueError), match=name):
        itm_loss(logits, labels)


# ----------------------------------------------------------------------------- negatives
def _batch(B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = 5 * torch.randn(B, B, generator=g)
    positives = torch.eye(B, dtype=torch.bool)
    positives[0, 3] = positives[2, 5] = positives[4, 1] = True    # captions true of other images
    return logits, positives


def test_negative_probabilities_are_albef_softmax_with_positives_removed():
    logits, positives = _batch()
    probs = negative_probabilities(logits, positives, eps=1e-4)
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    assert (probs[positives] == 0).all() and (probs[~positives] > 0).all()
    # ALBEF: softmax + eps, zero the diagonal (here all positives), renormalise
    expected = (logits.softmax(1) + 1e-4) * (~positives)
    torch.testing.assert_close(probs, expected / expected.sum(1, keepdim=True))


def test_zero_logits_give_uniform_random_negatives():
    _, positives = _batch()
    probs = negative_probabilities(torch.zeros(6, 6), positives)
    n_neg = (~positives).sum(1, keepdim=True).float()
    torch.testing.assert_close(probs, (~positives).float() / n_neg)


def test_sampler_frequencies_match_probabilities_chi_square():
    logits, positives = _batch()
    probs = negative_probabilities(logits, positives, eps=0.02)
    gen = torch.Generator().manual_seed(0)
    draws = 20000
    counts = torch.zeros(6, 6)
    for _ in range(draws // 100):
        idx = sample_negatives(probs.repeat(100, 1), gen).view(100, 6)
        counts += F.one_hot(idx, 6).sum(0).float()
    assert (counts[positives] == 0).all(), "a positive was sampled"
    for b in range(6):
        support = probs[b] > 0
        expected = draws * probs[b, support]
        chi2 = float((((counts[b, support] - expected) ** 2) / expected).sum())
        dof = int(support.sum()) - 1
        # chi-square 99.99th percentile is below dof + 6 sqrt(2 dof) + 10 for these dof
        assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, (b, chi2, dof)


def test_sample_hard_negatives_never_returns_a_positive_both_directions():
    gen = torch.Generator().manual_seed(0)
    for seed in range(50):
        logits, positives = _batch(seed=seed)
        logits[positives] += 100.0    # positives are by far the most similar
        t4i, i4t = sample_hard_negatives(logits, positives, gen)
        assert not positives[torch.arange(6), t4i].any()
        assert not positives[i4t, torch.arange(6)].any()


def test_row_without_negative_gets_minus_one():
    positives = torch.eye(3, dtype=torch.bool)
    positives[1] = True                      # caption set all true of image 1
    t4i, i4t = sample_hard_negatives(torch.zeros(3, 3), positives)
    assert t4i[1] == -1 and (t4i[[0, 2]] >= 0).all()
    assert (i4t >= 0).all()


@pytest.mark.parametrize("kwargs, name", [
    ({"logits": torch.zeros(3), "positives": torch.zeros(3, dtype=torch.bool)}, "logits"),
    ({"logits": torch.zeros(3, 3), "positives": torch.zeros(3, 3)}, "positives"),
    ({"logits": torch.zeros(3, 3), "positives": torch.zeros(3, 4, dtype=torch.bool)},
     "positives"),
    ({"logits": torch.full((3, 3), float("nan")), "positives": torch.eye(3, dtype=torch.bool)},
     "logits"),
    ({"logits": torch.zeros(3, 3), "positives": torch.eye(3, dtype=torch.bool), "eps": 0.0},
     "eps"),
])
def test_negative_probabilities_errors(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        negative_probabilities(**kwargs)


def test_sample_negatives_rejects_negative_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        sample_negatives(torch.tensor([[0.5, -0.5, 1.0]]))


# ----------------------------------------------------------------------------- regions
def test_pool_regions_is_roi_align_mean():
    from torchvision.ops import roi_align

    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(2, 5, 6, 6, generator=g)
    boxes = torch.tensor([[[0.0, 0.0, 16.0, 16.0], [8.0, 4.0, 40.0, 30.0]],
                          [[30.0, 30.0, 48.0, 48.0], [2.0, 20.0, 10.0, 44.0]]])
    out = pool_regions(fmap, boxes, spatial_scale=6 / 48, output_size=3, sampling_ratio=2)
    assert out.shape == (2, 2, 5)
    rois = [boxes[0], boxes[1]]
    ref = roi_align(fmap, rois, 3, 6 / 48, 2, aligned=True).mean(dim=(2, 3)).view(2, 2, 5)
    torch.testing.assert_close(out, ref)


def test_pool_regions_of_a_cell_box_is_the_mean_of_its_patches():
    # a box covering exactly patches (r, c) .. (r+1, c+1) of a constant-per-patch map
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(1, 4, 6, 6, generator=g)
    box = torch.tensor([[[16.0, 0.0, 32.0, 16.0]]])                 # patches rows 0-1, cols 2-3
    out = pool_regions(fmap, box, spatial_scale=6 / 48, output_size=2, sampling_ratio=1)
    torch.testing.assert_close(out[0, 0], fmap[0, :, 0:2, 2:4].mean(dim=(1, 2)))


def test_patch_tokens_to_map_round_trip():
    tokens = torch.arange(2 * 10 * 3, dtype=torch.float32).view(2, 10, 3)   # 1 class + 9 patches
    fmap = patch_tokens_to_map(tokens)
    assert fmap.shape == (2, 3, 3, 3)
    torch.testing.assert_close(fmap[1, :, 2, 1], tokens[1, 1 + 2 * 3 + 1])
    with pytest.raises(ValueError, match="tokens"):
        patch_tokens_to_map(torch.zeros(1, 9, 3))                     # 8 patches: not square


@pytest.mark.parametrize("fmap, boxes, name", [
    (torch.zeros(2, 4, 6), torch.zeros(2, 1, 4), "feature_map"),
    (torch.zeros(2, 4, 6, 6), torch.zeros(3, 1, 4), "boxes"),
    (torch.zeros(2, 4, 6, 6), torch.zeros(2, 1, 5), "boxes"),
    (torch.zeros(1, 4, 6, 6), torch.tensor([[[10.0, 0.0, 5.0, 8.0]]]), "boxes"),
])
def test_pool_regions_errors(fmap, boxes, name):
    with pytest.raises(ValueError, match=name):
        pool_regions(fmap, boxes, 1.0)


def test_region_word_logits_formula_and_padding_never_wins():
    g = torch.Generator().manual_seed(0)
    regions, words = torch.randn(2, 4, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    words[:, 3:] = regions[:, :1] * 50          # padding identical to region 0: it would win
    logits = region_word_logits(regions, words, math.log(10.0), -2.0, mask)
    cos = F.normalize(regions, dim=-1) @ F.normalize(words, dim=-1).transpose(1, 2)
    real = mask.bool()[:, None, :].expand_as(logits)
    torch.testing.assert_close(logits[real], (10 * cos - 2)[real])
    assert torch.isneginf(logits[~real]).all()
    best = logits.argmax(dim=2)                 # each region's best word
    assert mask.bool().gather(1, best).all(), "a padded word won a region"


def test_sigmoid_focal_loss_matches_torchvision():
    from torchvision.ops import sigmoid_focal_loss as tv_focal

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    targets = (torch.rand(3, 7, 5, generator=g) < 0.3).double()
    for alpha, gamma in ((0.25, 2.0), (0.5, 0.0), (-1.0, 1.5)):
        for reduction in ("none", "mean", "sum"):
            ours = sigmoid_focal_loss(logits, targets, alpha, gamma, reduction)
            ref = tv_focal(logits, targets, alpha, gamma, reduction)
            torch.testing.assert_close(ours, ref)
    ours_g, = torch.autograd.grad(sigmoid_focal_loss(logits, targets, reduction="sum"), logits)
    ref_g, = torch.autograd.grad(tv_focal(logits, targets, reduction="sum"), logits)
    torch.testing.assert_close(ours_g, ref_g)


def test_region_word_loss_is_focal_over_real_pairs_per_positive():
    from torchvision.ops import sigmoid_focal_loss as tv_focal

    g = torch.Generator().manual_seed(0)
    regions, words = torch.randn(2, 3, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]])
    targets = torch.zeros(2, 3, 6, dtype=torch.bool)
    targets[0, 1, 2] = targets[1, 0, 1] = targets[1, 2, 4] = True
    logits = region_word_logits(regions, words, 1.0, -1.0, mask)
    loss = region_word_loss(logits, targets, mask)
    real = mask.bool()[:, None, :].expand_as(logits)
    ref = tv_focal(logits[real], targets[real].float(), reduction="sum") / 3
    torch.testing.assert_close(loss, ref)
    assert torch.isfinite(loss)
    bad = targets.clone()
    bad[0, 0, 5] = True                          # a padded word as a target
    with pytest.raises(ValueError, match="targets"):
        region_word_loss(logits, bad, mask)
    with pytest.raises(ValueError, match="word_mask"):
        region_word_loss(logits, targets, mask[:, :5])


@pytest.mark.parametrize("kwargs, name", [
    ({"regions": torch.zeros(2, 3), "words": torch.zeros(2, 4, 8)}, "regions"),
    ({"regions": torch.zeros(2, 3, 8), "words": torch.zeros(2, 4, 7)}, "regions and words"),
    ({"regions": torch.zeros(2, 3, 8), "words": torch.zeros(2, 4, 8),
      "word_mask": torch.ones(2, 5)}, "word_mask"),
    ({"regions": torch.zeros(2, 3, 8), "words": torch.zeros(2, 4, 8),
      "logit_scale": torch.zeros(2)}, "logit_scale"),
])
def test_region_word_logits_errors(kwargs, name):
    args = {"logit_scale": 0.0, "bias": 0.0, **kwargs}
    with pytest.raises((TypeError, ValueError), match=name):
        region_word_logits(**args)


# ----------------------------------------------------------------------------- FILIP
def _filip_loops(img, txt, im, tm):
    B, C = img.shape[0], txt.shape[0]
    i2t, t2i = torch.zeros(B, C, dtype=img.dtype), torch.zeros(B, C, dtype=img.dtype)
    for b in range(B):
        for c in range(C):
            toks = [F.normalize(img[b, n], dim=0) for n in range(img.shape[1]) if im[b, n]]
            wrds = [F.normalize(txt[c, j], dim=0) for j in range(txt.shape[1]) if tm[c, j]]
            i2t[b, c] = sum(max(float(t @ w) for w in wrds) for t in toks) / len(toks)
            t2i[b, c] = sum(max(float(t @ w) for t in toks) for w in wrds) / len(wrds)
    return i2t, t2i


def test_filip_equals_explicit_loops_with_padding():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    txt = torch.randn(4, 6, 4, generator=g, dtype=torch.float64)
    im = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    tm = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    img[1, 2:] = 1e3 * txt[0, 0]                 # padding that would win every max if it leaked
    txt[0, 3:] = img[0, 0]
    i2t, t2i = filip_similarity(img, txt, im, tm)
    ref_i2t, ref_t2i = _filip_loops(img, txt, im.bool(), tm.bool())
    torch.testing.assert_close(i2t, ref_i2t)
    torch.testing.assert_close(t2i, ref_t2i)


def test_filip_without_masks_and_identical_tokens():
    x = F.normalize(torch.randn(2, 3, 4), dim=-1)
    i2t, t2i = filip_similarity(x, x)
    torch.testing.assert_close(i2t.diagonal(), torch.ones(2))
    torch.testing.assert_close(t2i.diagonal(), torch.ones(2))


@pytest.mark.parametrize("kwargs, name", [
    ({"image_tokens": torch.zeros(2, 3), "text_tokens": torch.zeros(2, 3, 4)}, "image_tokens"),
    ({"image_tokens": torch.zeros(2, 3, 4), "text_tokens": torch.zeros(2, 3, 5)},
     "image_tokens and text_tokens"),
    ({"image_tokens": torch.zeros(2, 3, 4), "text_tokens": torch.zeros(2, 3, 4),
      "text_mask": torch.tensor([[1, 1, 1], [0, 0, 0]])}, "text_mask"),
    ({"image_tokens": torch.zeros(2, 3, 4), "text_tokens": torch.zeros(2, 3, 4),
      "image_mask": torch.ones(2, 2)}, "image_mask"),
])
def test_filip_errors(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        filip_similarity(**kwargs)


# ----------------------------------------------------------------------------- the GLIP head
def test_region_word_head_trains_a_toy_grounding_problem():
    from vlm_course.models.grounding import RegionWordConfig, RegionWordHead

    torch.manual_seed(0)
    head = RegionWordHead(RegionWordConfig(image_dim=6, text_dim=5, embed_dim=8))
    g = torch.Generator().manual_seed(0)
    # 4 "objects": region feature = one-hot in 6 dims (+ noise), word feature = its own code
    codes_r, codes_w = torch.eye(6)[:4], torch.randn(4, 5, generator=g)
    B, M, L = 64, 4, 4
    perm = torch.stack([torch.randperm(4, generator=g) for _ in range(B)])     # region order
    regions = codes_r[perm] + 0.05 * torch.randn(B, M, 6, generator=g)
    words = codes_w.expand(B, L, 5).clone()
    targets = perm[:, :, None] == torch.arange(L)[None, None, :]                # (B, M, L)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(150):
        r, w = head(regions, words)
        loss = region_word_loss(region_word_logits(r, w, head.logit_scale, head.bias), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None for p in head.parameters())
    r, w = head(regions, words)
    torch.testing.assert_close(r.norm(dim=-1), torch.ones(B, M))
    logits = region_word_logits(r, w, head.logit_scale, head.bias)
    pointing = (logits.argmax(dim=1) == targets.float().argmax(dim=1)).float().mean()
    assert pointing == 1.0, pointing
    with pytest.raises(ValueError, match="regions"):
        head(regions[..., :5], words)
    with pytest.raises(ValueError, match="words"):
        head.encode_words(words.long())
    with pytest.raises(TypeError, match="config"):
        RegionWordHead({"image_dim": 6})
    with pytest.raises(ValueError, match="embed_dim"):
        RegionWordConfig(embed_dim=0)
