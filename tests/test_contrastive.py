"""Contrastive objectives (chapter 04) against open_clip, transformers, pytorch-metric-learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vlm_course.objectives.contrastive import (
    CLIP_INIT_LOGIT_SCALE,
    CLIP_MAX_LOGIT_SCALE,
    SIGLIP_INIT_LOGIT_BIAS,
    SIGLIP_INIT_LOGIT_SCALE,
    clip_logits,
    clip_loss,
    clip_loss_written_out,
    nt_xent_loss,
    siglip_loss,
    unicl_loss,
    unicl_targets,
)


def _features(B=6, D=5, seed=0, dtype=torch.float64, grad=False):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(B, D, generator=g, dtype=dtype)
    txt = img + 0.8 * torch.randn(B, D, generator=g, dtype=dtype)  # correlated pairs
    return img.requires_grad_(grad), txt.requires_grad_(grad)


def _unit(x):
    return F.normalize(x, dim=-1)


# ----------------------------------------------------------------------------- CLIP
def test_initial_scales_agree_with_open_clip():
    """The constants against the reference library's own defaults, not against their formulas."""
    open_clip = pytest.importorskip("open_clip")
    import inspect

    default = inspect.signature(open_clip.model.CLIP).parameters["init_logit_scale"].default
    assert CLIP_INIT_LOGIT_SCALE == pytest.approx(float(default), abs=1e-12)
    siglip = open_clip.get_model_config("ViT-B-16-SigLIP")
    assert SIGLIP_INIT_LOGIT_BIAS == siglip["init_logit_bias"]


def test_scale_constants_as_multipliers():
    """What the log-space constants do to logits: identical unit vectors score exp(scale)."""
    unit = torch.eye(3, dtype=torch.float64)
    top = clip_logits(unit, unit, CLIP_MAX_LOGIT_SCALE).diagonal()
    torch.testing.assert_close(top, torch.full((3,), 100.0, dtype=torch.float64))  # the cap
    start = clip_logits(unit, unit, CLIP_INIT_LOGIT_SCALE).diagonal()
    torch.testing.assert_close(start * 0.07, torch.ones(3, dtype=torch.float64))  # tau = 0.07
    z = siglip_loss(unit, unit, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS)
    # SigLIP at init: matched pairs score 10 - 10 = 0 (log 2 each), orthogonal ones -10
    expected = (3 * math.log(2) + 6 * math.log1p(math.exp(-10.0))) / 3
    assert z.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_written_out_equals_cross_entropy_version(seed):
    img, txt = _features(seed=seed, grad=True)
    s = torch.tensor(CLIP_INIT_LOGIT_SCALE, dtype=torch.float64, requires_grad=True)
    a = clip_loss(img, txt, s)
    b = clip_loss_written_out(img, txt, s)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a, (img, txt, s))
    gb = torch.autograd.grad(b, (img, txt, s))
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y)


def test_clip_matches_open_clip_loss_and_gradients():
    open_clip_loss = pytest.importorskip("open_clip.loss")
    img, txt = _features(B=8, D=7, dtype=torch.float32, grad=True)
    s = torch.tensor(2.5, requires_grad=True)
    ours = clip_loss(img, txt, s)
    ref = open_clip_loss.ClipLoss()(_unit(img), _unit(txt), s.exp())  # open_clip: exp'd scale
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    for x, y in zip(
        torch.autograd.grad(ours, (img, txt, s)),
        torch.autograd.grad(ref, (img, txt, s)),
        strict=True,
    ):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_clip_matches_transformers_helper():
    from transformers.models.clip import modeling_clip  # a runtime dependency: never skipped

    helper = getattr(modeling_clip, "image_text_contrastive_loss", None)  # transformers 5.x
    helper = helper or modeling_clip.clip_loss  # transformers 4.x
    img, txt = _features(B=5, D=4, dtype=torch.float32)
    logits_per_text = clip_logits(img, txt, 1.7).T
    torch.testing.assert_close(clip_loss(img, txt, 1.7), helper(logits_per_text))


def test_clip_logits_values_and_scale_convention():
    img, txt = _features()
    logits = clip_logits(img, txt, torch.tensor(math.log(3.0)))
    torch.testing.assert_close(logits, 3.0 * _unit(img) @ _unit(txt).T)
    raw = clip_logits(img, txt, 0.0, normalize=False)
    torch.testing.assert_close(raw, img @ txt.T)


def test_clip_invariances():
    img, txt = _features(B=7)
    base = clip_loss(img, txt, 2.0)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(clip_loss(img[perm], txt[perm], 2.0), base)  # batch order
    torch.testing.assert_close(clip_loss(3.0 * img, 0.5 * txt, 2.0), base)  # normalised inside
    torch.testing.assert_close(clip_loss(txt, img, 2.0), base)  # symmetric in the two towers
    assert clip_loss(img[:1], txt[:1], 2.0).item() == pytest.approx(0.0, abs=1e-12)  # no negatives


def test_clip_perfect_alignment_is_small_and_stable():
    img = torch.eye(4)
    low = clip_loss(img, img, CLIP_MAX_LOGIT_SCALE)
    assert torch.isfinite(low) and low.item() < 1e-6  # scale 100, orthogonal negatives
    big = clip_loss(img, img.flip(0), torch.tensor(50.0))  # huge logits stay finite
    assert torch.isfinite(big) and torch.isfinite(clip_loss_written_out(img, img.flip(0), 50.0))


# ----------------------------------------------------------------------------- SigLIP
def test_siglip_matches_open_clip_loss_and_gradients():
    open_clip_loss = pytest.importorskip("open_clip.loss")
    img, txt = _features(B=6, D=5, dtype=torch.float32, grad=True)
    s = torch.tensor(SIGLIP_INIT_LOGIT_SCALE, requires_grad=True)
    b = torch.tensor(SIGLIP_INIT_LOGIT_BIAS, requires_grad=True)
    ours = siglip_loss(img, txt, s, b)
    ref = open_clip_loss.SigLipLoss()(_unit(img), _unit(txt), s.exp(), b)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    for x, y in zip(
        torch.autograd.grad(ours, (img, txt, s, b)),
        torch.autograd.grad(ref, (img, txt, s, b)),
        strict=True,
    ):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_siglip_written_as_a_loop_and_permutation_invariant():
    img, txt = _features(B=4)
    z = math.exp(1.5) * _unit(img) @ _unit(txt).T - 2.0
    loop = (
        sum(-F.logsigmoid(z[i, j] if i == j else -z[i, j]) for i in range(4) for j in range(4)) / 4
    )
    torch.testing.assert_close(siglip_loss(img, txt, 1.5, -2.0), loop)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(siglip_loss(img[perm], txt[perm], 1.5, -2.0), loop)


# ----------------------------------------------------------------------------- UniCL
def test_unicl_targets():
    targets = unicl_targets(torch.tensor([0, 1, 0, 0]))
    third = 1 / 3
    expected = torch.tensor(
        [[third, 0, third, third], [0, 1, 0, 0], [third, 0, third, third], [third, 0, third, third]]
    )
    torch.testing.assert_close(targets, expected)
    torch.testing.assert_close(unicl_targets(torch.arange(5)), torch.eye(5))


def test_unicl_targets_follow_the_requested_dtype():
    labels = torch.tensor([3, 3, 3, 1])
    t64 = unicl_targets(labels, torch.float64)
    assert t64.dtype == torch.float64 and t64[0, 0].item() == 1 / 3  # exact in float64
    assert unicl_targets(labels, torch.bfloat16).dtype == torch.bfloat16
    assert unicl_targets(labels).dtype == torch.float32


def test_unicl_float64_matches_an_independent_float64_loop():
    """float64 UniCL equals a loop in float64 to 1e-13 (float32 targets were off by ~1e-8)."""
    img, txt = _features(B=6, seed=11)  # float64
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    S = math.exp(2.5) * _unit(img) @ _unit(txt).T
    total = torch.zeros((), dtype=torch.float64)
    for i in range(6):
        pos = [k for k in range(6) if labels[k] == labels[i]]
        w = 1.0 / len(pos)  # a Python float: exact 1/3 in double precision
        total = total - sum(w * S[i].log_softmax(0)[k] for k in pos)
        total = total - sum(w * S[:, i].log_softmax(0)[k] for k in pos)
    ours = unicl_loss(img, txt, labels, 2.5)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, total / 12, rtol=1e-13, atol=1e-13)


def test_unicl_reduces_to_clip_with_distinct_labels():
    img, txt = _features(B=6, grad=True)
    labels = torch.tensor([5, 2, 9, 0, 1, 7])
    a, b = unicl_loss(img, txt, labels, 2.0), clip_loss(img, txt, 2.0)
    torch.testing.assert_close(a, b)
    for x, y in zip(
        torch.autograd.grad(a, (img, txt)), torch.autograd.grad(b, (img, txt)), strict=True
    ):
        torch.testing.assert_close(x, y)


def test_unicl_loop_version_and_permutation_invariance():
    img, txt = _features(B=5)
    labels = torch.tensor([0, 1, 0, 2, 1])
    S = math.exp(2.0) * _unit(img) @ _unit(txt).T
    i2t = t2i = 0.0
    for i in range(5):
        pos = [k for k in range(5) if labels[k] == labels[i]]
        i2t += -sum(S[i].log_softmax(0)[k] for k in pos) / len(pos)
        t2i += -sum(S[:, i].log_softmax(0)[k] for k in pos) / len(pos)
    torch.testing.assert_close(unicl_loss(img, txt, labels, 2.0), (i2t + t2i) / 10)
    perm = torch.tensor([4, 2, 0, 1, 3])
    torch.testing.assert_close(
        unicl_loss(img[perm], txt[perm], labels[perm], 2.0), unicl_loss(img, txt, labels, 2.0)
    )


def test_unicl_removes_false_negatives():
    # pairs 0 and 1 share a label and each image sits closer to the *other* pair's caption:
    # CLIP counts that as a mistake (a false negative), UniCL as a positive.
    img = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.0, 0.0, 1.0]])
    txt = img[[1, 0, 2]]
    labels = torch.tensor([0, 0, 1])
    assert unicl_loss(img, txt, labels, 3.0) < clip_loss(img, txt, 3.0) - 0.05


# ----------------------------------------------------------------------------- SimCLR
def _nt_xent_loop(z1, z2, tau):
    """Independent implementation: one anchor at a time, explicit sums."""
    z = _unit(torch.cat([z1, z2]))
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        p = (i + n // 2) % n
        num = torch.exp(z[i] @ z[p] / tau)
        den = sum(torch.exp(z[i] @ z[k] / tau) for k in range(n) if k != i)
        total = total - torch.log(num / den)
    return total / n


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_loop(tau):
    z1, z2 = _features(B=5, D=4, seed=4)
    torch.testing.assert_close(nt_xent_loss(z1, z2, tau), _nt_xent_loop(z1, z2, tau))


def test_nt_xent_matches_pytorch_metric_learning():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = _features(B=8, D=6, dtype=torch.float32, grad=True)
    ours = nt_xent_loss(z1, z2, 0.2)
    # pml: 2B embeddings, the two views of image i share label i; mean over the 2B positive pairs
    ref = losses.NTXentLoss(temperature=0.2)(torch.cat([z1, z2]), torch.arange(8).repeat(2))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for x, y in zip(
        torch.autograd.grad(ours, (z1, z2)), torch.autograd.grad(ref, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_nt_xent_invariances():
    z1, z2 = _features(B=6, seed=5)
    base = nt_xent_loss(z1, z2)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(nt_xent_loss(z1[perm], z2[perm]), base)
    torch.testing.assert_close(nt_xent_loss(z2, z1), base)  # the two views play symmetric roles
    # identical views, orthogonal images: the loss approaches its floor 0 as tau -> 0
    assert nt_xent_loss(torch.eye(3), torch.eye(3), 0.01).item() < 1e-6


# ----------------------------------------------------------------------------- gradcheck
def test_gradcheck_all_losses():
    img, txt = _features(B=3, D=2, seed=7, grad=True)
    s = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    assert torch.autograd.gradcheck(clip_loss, (img, txt, s))
    assert torch.autograd.gradcheck(clip_loss_written_out, (img, txt, s))
    assert torch.autograd.gradcheck(lambda i, t, s: unicl_loss(i, t, labels, s), (img, txt, s))
    assert torch.autograd.gradcheck(siglip_loss, (img, txt, s, b))
    assert torch.autograd.gradcheck(lambda a, c: nt_xent_loss(a, c, 0.5), (img, txt))


def test_every_input_gets_a_finite_gradient():
    img, txt = _features(B=4, dtype=torch.float32, grad=True)
    s = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(-1.0, requires_grad=True)
    total = (
        clip_loss(img, txt, s)
        + unicl_loss(img, txt, torch.tensor([0, 0, 1, 2]), s)
        + siglip_loss(img, txt, s, b)
        + nt_xent_loss(img, txt)
    )
    assert torch.isfinite(total)
    total.backward()
    for t in (img, txt, s, b):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "fn",
    [
        lambda a, c: clip_loss(a, c, 1.0),
        lambda a, c: clip_loss_written_out(a, c, 1.0),
        lambda a, c: clip_logits(a, c, 1.0),
        lambda a, c: unicl_loss(a, c, torch.zeros(a.shape[0], dtype=torch.long), 1.0),
        lambda a, c: siglip_loss(a, c, 1.0, 0.0),
    ],
)
def test_image_text_errors_name_the_argument(fn):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="text_features"):
        fn(x, torch.randn(5, 3))  # mismatched batch
    with pytest.raises(ValueError, match="image_features"):
        fn(torch.randn(4), x)  # wrong rank
    with pytest.raises(ValueError, match="text_features"):
        fn(x, torch.randn(4, 3, 1))  # not 2-D
    with pytest.raises(TypeError, match="image_features"):
        fn(x.long(), x)
    with pytest.raises(TypeError, match="text_features"):
        fn(x, x.tolist())


def test_scalar_and_label_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="logit_scale"):
        clip_loss(x, x, torch.ones(2))
    with pytest.raises(ValueError, match="logit_scale"):
        clip_loss(x, x, float("nan"))
    with pytest.raises(TypeError, match="logit_scale"):
        clip_loss(x, x, "1.0")
    with pytest.raises(ValueError, match="logit_bias"):
        siglip_loss(x, x, 1.0, torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        unicl_loss(x, x, torch.zeros(3, dtype=torch.long), 1.0)
    with pytest.raises(TypeError, match="labels"):
        unicl_loss(x, x, torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="labels"):
        unicl_targets(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="labels"):
        unicl_targets([0, 1])
    with pytest.raises(ValueError, match="z2"):
        nt_xent_loss(x, torch.randn(3, 3))
    with pytest.raises(ValueError, match="z1"):
        nt_xent_loss(torch.randn(4, 3, 2), x)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(x, x, 0.0)


def test_public_input_checks():
    from vlm_course.objectives import contrastive

    x = torch.randn(4, 3)
    a, b = contrastive.check_pair("a", x, "b", x.clone())
    assert a is x and b.shape == (4, 3)
    with pytest.raises(ValueError, match=r"image_emb and text_emb must have the same shape.*"
                                         r"got image_emb \(4, 3\) and text_emb \(3, 3\)"):
        contrastive.check_pair("image_emb", x, "text_emb", torch.randn(3, 3))
    assert contrastive.check_scalar("s", 2) == 2.0
    p = torch.nn.Parameter(torch.tensor([0.5]))
    s = contrastive.check_scalar("s", p)
    assert s.shape == () and s.requires_grad
    with pytest.raises(TypeError, match="s must be"):
        contrastive.check_scalar("s", True)
    assert contrastive.exp_scale(math.log(3.0)) == pytest.approx(3.0)
    assert isinstance(contrastive.exp_scale(1.0), float)
    torch.testing.assert_close(contrastive.exp_scale(torch.tensor(0.0)), torch.tensor(1.0))
    for name in ("check_pair", "check_scalar", "exp_scale"):
        assert name in contrastive.__all__


# ----------------------------------------------------------------------------- options honoured
def test_normalize_false_is_passed_through_every_loss():
    """normalize=False must reach the logits: compare with the raw-feature formulas."""
    img, txt = _features(B=4, seed=9)
    img, txt = 2.0 * img, 0.5 * txt  # far from unit norm, so normalising would change the value
    labels = torch.tensor([0, 1, 0, 2])
    S = math.exp(0.3) * img @ txt.T
    target = torch.arange(4)
    clip_raw = (F.cross_entropy(S, target) + F.cross_entropy(S.T, target)) / 2
    torch.testing.assert_close(clip_loss(img, txt, 0.3, normalize=False), clip_raw)
    torch.testing.assert_close(clip_loss_written_out(img, txt, 0.3, normalize=False), clip_raw)
    T = unicl_targets(labels, torch.float64)
    unicl_raw = (-(T * S.log_softmax(1)).sum(1).mean() - (T * S.T.log_softmax(1)).sum(1).mean()) / 2
    torch.testing.assert_close(unicl_loss(img, txt, labels, 0.3, normalize=False), unicl_raw)
    Z = S - 1.0
    sign = 2 * torch.eye(4, dtype=torch.float64) - 1
    torch.testing.assert_close(siglip_loss(img, txt, 0.3, -1.0, normalize=False),
                               -F.logsigmoid(sign * Z).sum() / 4)
    z = torch.cat([img, txt])
    sim = (z @ z.T / 0.5).masked_fill(torch.eye(8, dtype=torch.bool), float("-inf"))
    torch.testing.assert_close(nt_xent_loss(img, txt, 0.5, normalize=False),
                               F.cross_entropy(sim, torch.arange(8).roll(4)))
    assert not torch.isclose(clip_loss(img, txt, 0.3), clip_raw)  # the option matters here


def test_nt_xent_default_temperature_is_simclr_half():
    z1, z2 = _features(B=5, seed=2)
    torch.testing.assert_close(nt_xent_loss(z1, z2), _nt_xent_loop(z1, z2, 0.5))


def test_smallest_valid_shapes_are_accepted():
    """B = 1 and D = 1 are valid batches (only empty ones are refused)."""
    one = torch.tensor([[2.0], [-1.0], [0.5]])
    assert torch.isfinite(clip_loss(one, one.flip(0), 1.0))
    torch.testing.assert_close(unicl_targets(torch.tensor([7])), torch.ones(1, 1))
    assert torch.isfinite(unicl_loss(one[:1], one[:1], torch.tensor([7]), 1.0))
