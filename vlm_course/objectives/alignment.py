"""Alignment objectives: image-text matching with hard negatives, region-word alignment, FILIP.

Chapter 06.  The survey's third family of pre-training objectives aligns images and texts
either globally (image-text matching, ITM: does this caption describe this image?) or locally
(region-word alignment: which region does this word describe?).  Every function here is pure:
tensors in, tensors out, randomness only through an explicit ``torch.Generator``.

* ITM (ALBEF, Li et al. 2021; BLIP, Li et al. 2022): a binary classifier on a fused encoding,
  trained on the B matched pairs of a batch and 2B negatives — for each image a wrong caption and
  for each caption a wrong image, drawn with probability proportional to the softmax of the
  contrastive similarity ("hard" negatives: the ones the two-tower model finds most similar).
* Region-word alignment (GLIP, Li et al. 2022): region features pooled from boxes are scored
  against every word, ``logit = exp(s) * cos(region, word) + b``, with a sigmoid focal loss
  (Lin et al. 2017) against phrase-grounding targets.
* FILIP (Yao et al. 2022): token-wise late interaction — each token takes its best match among
  the other modality's tokens, and the similarity is the average of those maxima.

Shapes: B images, C captions, N image tokens, L text tokens, M regions, D/E widths.  Masks are
1/True = real, 0/False = padding.  ``logit_scale`` is log-space, as everywhere in the course.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .contrastive import check_scalar, exp_scale

__all__ = ["itm_loss", "negative_probabilities", "sample_negatives", "sample_hard_negatives",
           "patch_tokens_to_map", "pool_regions", "region_word_logits", "sigmoid_focal_loss",
           "region_word_loss", "filip_similarity"]


def _tensor(name: str, x, dims: int, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor {what}, got {type(x).__name__}")
    if x.dim() != dims:
        raise ValueError(f"{name}: expected shape {what}, got {tuple(x.shape)}")
    return x


def _mask(name: str, mask, shape: tuple[int, ...], device) -> Tensor:
    """A 0/1 or bool mask of ``shape`` as bool (True = real); all True for ``None``."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name}: expected a {tuple(shape)} mask (1 = real, 0 = padding), got "
                         f"{tuple(mask.shape) if isinstance(mask, Tensor) else type(mask)}")
    if mask.dtype != torch.bool and ((mask != 0) & (mask != 1)).any():
        raise ValueError(f"{name}: expected values 0/1, got {sorted(set(mask.flatten().tolist()))}")
    return mask.to(device).bool()


# ----------------------------------------------------------------------------- ITM
def itm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Image-text matching loss: the mean binary cross-entropy over pairs (ALBEF; chapter 06).

    logits: (P, 2) float — (no match, match) logits, as ALBEF's head gives them; the loss is then
        ``F.cross_entropy(logits, labels)`` — or (P,) float, one match logit per pair, and the loss
        is ``F.binary_cross_entropy_with_logits``.  The two agree when the one logit is the
        difference of the two (a 2-way softmax is a sigmoid of the logit difference).
    labels: (P,) int/bool/float with values 0 (negative pair) or 1 (matched pair).
    Returns a () float tensor.  Raises TypeError/ValueError for wrong types, shapes or labels.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits: expected a tensor (P, 2) or (P,), got {type(logits).__name__}")
    if not logits.is_floating_point() or logits.dim() not in (1, 2) or (
            logits.dim() == 2 and logits.shape[1] != 2) or logits.shape[0] == 0:
        raise ValueError(f"logits: expected a float (P, 2) or (P,) tensor with P >= 1, got "
                         f"{logits.dtype} {tuple(logits.shape)}")
    labels = _tensor("labels", labels, 1, f"({logits.shape[0]},)")
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels: expected shape ({logits.shape[0]},) like logits, got "
                         f"{tuple(labels.shape)}")
    if ((labels != 0) & (labels != 1)).any():
        raise ValueError(f"labels: expected 0 (no match) or 1 (match), got "
                         f"{sorted(set(labels.tolist()))}")
    if logits.dim() == 2:
        return F.cross_entropy(logits, labels.long())
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def negative_probabilities(logits: Tensor, positives: Tensor, eps: float = 1e-4) -> Tensor:
    """Hard-negative sampling probabilities (ALBEF's recipe with true captions removed).

    logits: (B, C) float scaled similarities of B queries (e.g. images) to C candidates (captions),
        e.g. ``exp(logit_scale) * cos``; all zeros gives uniform ("random") negatives.
    positives: (B, C) bool, True where candidate c is a correct answer for query b — its own
        caption (the diagonal of an in-batch matrix) and any other caption that is true of it.
    eps: added to the softmax before positives are removed, so every negative keeps a chance.
    Returns (B, C) float: ``softmax(logits) + eps`` with positives set to 0, each row normalised
    to sum to 1; a row without a single negative is all zeros.

    On real web data nobody knows which other captions in a batch are true of an image: ALBEF and
    BLIP zero only the diagonal (and BLIP the pairs of the same image id), so a near-duplicate
    caption can be drawn as a "negative" — a false negative that hard mining makes *more* likely.
    ShapeWorld knows the truth of every caption, so ``positives`` removes them all.
    """
    logits = _tensor("logits", logits, 2, "(B, C)")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected a float tensor, got {logits.dtype}")
    positives = _tensor("positives", positives, 2, f"{tuple(logits.shape)}")
    if positives.shape != logits.shape or positives.dtype != torch.bool:
        raise ValueError(f"positives: expected a bool tensor of shape {tuple(logits.shape)}, got "
                         f"{positives.dtype} {tuple(positives.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits: expected finite values, got NaN or inf")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps: expected a float > 0, got {eps!r}")
    weights = logits.float().softmax(dim=1) + eps
    weights = weights.masked_fill(positives, 0.0)          # never a true caption
    total = weights.sum(dim=1, keepdim=True)
    return torch.where(total > 0, weights / total.clamp_min(1e-30), torch.zeros_like(weights))


def sample_negatives(probabilities: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One index per row drawn from ``probabilities`` (B, C) (rows sum to 1 or are all zero).

    Returns (B,) long: the sampled column, or -1 for a row of zeros (no negative exists).
    """
    probabilities = _tensor("probabilities", probabilities, 2, "(B, C)")
    if (probabilities < 0).any() or not torch.isfinite(probabilities).all():
        raise ValueError("probabilities: expected finite values >= 0")
    has = probabilities.sum(dim=1) > 0
    safe = torch.where(has[:, None], probabilities, torch.ones_like(probabilities))
    if safe.shape[1] == 0:
        return torch.full((safe.shape[0],), -1, dtype=torch.long, device=safe.device)
    draw = torch.multinomial(safe, 1, generator=generator).squeeze(1)
    return torch.where(has, draw, torch.full_like(draw, -1))


def sample_hard_negatives(logits: Tensor, positives: Tensor,
                          generator: torch.Generator | None = None, eps: float = 1e-4
                          ) -> tuple[Tensor, Tensor]:
    """ALBEF's symmetric negatives for a batch of B images and C captions.

    logits: (B, C) scaled image-caption similarities (all zeros: random negatives).
    positives: (B, C) bool, True where caption c is true of image b.
    Returns ``(text_for_image (B,) long, image_for_text (C,) long)``: for each image a caption
    false of it, drawn ∝ softmax of its row of ``logits`` (+ eps), and for each caption an image
    it is false of, drawn from its column; -1 where none exists.  Never returns a positive.
    """
    text_for_image = sample_negatives(negative_probabilities(logits, positives, eps), generator)
    image_for_text = sample_negatives(negative_probabilities(logits.T, positives.T, eps),
                                      generator)
    return text_for_image, image_for_text


# ----------------------------------------------------------------------------- regions and words
def patch_tokens_to_map(tokens: Tensor, has_class_token: bool = True) -> Tensor:
    """ViT tokens (B, [1 +] N, D) on a square g x g grid -> a feature map (B, D, g, g)."""
    tokens = _tensor("tokens", tokens, 3, "(B, N, D)")
    x = tokens[:, 1:] if has_class_token else tokens
    B, N, D = x.shape
    g = int(round(N ** 0.5))
    if g * g != N or N == 0:
        raise ValueError(f"tokens: expected a square number of patch tokens, got N = {N}")
    return x.transpose(1, 2).reshape(B, D, g, g)   # (B, N, D) -> (B, D, N) -> (B, D, g, g)


def pool_regions(feature_map: Tensor, boxes: Tensor, spatial_scale: float,
                 output_size: int = 2, sampling_ratio: int = 2) -> Tensor:
    """Region features: ``torchvision.ops.roi_align`` of each box, averaged over its bins.

    feature_map: (B, D, H', W') float.  boxes: (B, M, 4) float xyxy boxes in image pixels.
    spatial_scale: feature cells per image pixel (``H' / H``).  output_size, sampling_ratio:
    roi_align's bins per side and samples per bin (aligned=True: pixel centres at +0.5).
    Returns (B, M, D).  Raises ValueError for wrong shapes or inverted boxes.
    """
    from torchvision.ops import roi_align

    feature_map = _tensor("feature_map", feature_map, 4, "(B, D, H, W)")
    boxes = _tensor("boxes", boxes, 3, "(B, M, 4)")
    B, D = feature_map.shape[:2]
    if boxes.shape[0] != B or boxes.shape[2] != 4:
        raise ValueError(f"boxes: expected shape ({B}, M, 4) xyxy, got {tuple(boxes.shape)}")
    if (boxes[..., 2:] < boxes[..., :2]).any():
        raise ValueError("boxes: expected x1 <= x2 and y1 <= y2 (xyxy)")
    M = boxes.shape[1]
    rois = boxes.to(feature_map.dtype).reshape(B * M, 4)                  # (B*M, 4)
    batch_index = torch.arange(B, device=boxes.device).repeat_interleave(M)[:, None]
    rois = torch.cat([batch_index.to(rois.dtype), rois], dim=1)          # (B*M, 5)
    pooled = roi_align(feature_map, rois, output_size, spatial_scale, sampling_ratio,
                       aligned=True)                                    # (B*M, D, s, s)
    return pooled.mean(dim=(2, 3)).reshape(B, M, D)


def region_word_logits(regions: Tensor, words: Tensor, logit_scale, bias,
                       word_mask: Tensor | None = None) -> Tensor:
    """GLIP's alignment scores: ``exp(logit_scale) * cos(region m, word l) + bias``.

    regions: (B, M, E), words: (B, L, E) float (normalised here).  logit_scale: log-space scalar;
    bias: scalar.  word_mask: (B, L), 1 = real word, 0 = padding (default: all real).
    Returns (B, M, L) float; padded words get ``-inf`` so no region ever picks one.
    """
    regions = _tensor("regions", regions, 3, "(B, M, E)")
    words = _tensor("words", words, 3, "(B, L, E)")
    if regions.shape[0] != words.shape[0] or regions.shape[2] != words.shape[2]:
        raise ValueError(f"regions and words: expected (B, M, E) and (B, L, E) with the same B "
                         f"and E, got {tuple(regions.shape)} and {tuple(words.shape)}")
    scale = exp_scale(check_scalar("logit_scale", logit_scale))
    bias = check_scalar("bias", bias)
    mask = _mask("word_mask", word_mask, words.shape[:2], words.device)
    cos = F.normalize(regions, dim=-1) @ F.normalize(words, dim=-1).transpose(1, 2)  # (B, M, L)
    return (scale * cos + bias).masked_fill(~mask[:, None, :], float("-inf"))


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none") -> Tensor:
    """Focal loss on independent sigmoids (Lin et al. 2017), as in GLIP's alignment loss.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` for a target 1 and ``1 - p`` for
    0 (``alpha_t = alpha`` / ``1 - alpha``; ``alpha < 0`` switches the weighting off).  logits and
    targets: same shape, float targets in [0, 1].  reduction: "none", "mean" or "sum".
    """
    if not isinstance(logits, Tensor) or not isinstance(targets, Tensor) \
            or logits.shape != targets.shape:
        raise ValueError(f"logits and targets: expected tensors of one shape, got "
                         f"{getattr(logits, 'shape', type(logits))} and "
                         f"{getattr(targets, 'shape', type(targets))}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction: expected 'none', 'mean' or 'sum', got {reduction!r}")
    targets = targets.to(logits.dtype)
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction] \
        if loss.numel() else loss.sum()


def region_word_loss(logits: Tensor, targets: Tensor, word_mask: Tensor | None = None,
                     alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """GLIP-style region-word loss: sigmoid focal loss summed over real (region, word) pairs,
    divided by the number of positive pairs (at least 1), as detectors normalise it.

    logits: (B, M, L) from :func:`region_word_logits`.  targets: (B, M, L) bool/0-1, True where
    word l describes region m (ShapeWorld's phrase grounding).  word_mask: (B, L), 1 = real.
    Padded words are excluded (their ``-inf`` logits never enter the loss).  Returns a () tensor.
    """
    logits = _tensor("logits", logits, 3, "(B, M, L)")
    targets = _tensor("targets", targets, 3, f"{tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets: expected shape {tuple(logits.shape)}, got "
                         f"{tuple(targets.shape)}")
    mask = _mask("word_mask", word_mask, (logits.shape[0], logits.shape[2]), logits.device)
    valid = mask[:, None, :].expand_as(logits)
    if (targets.bool() & ~valid).any():
        raise ValueError("targets: a padded word (word_mask 0) is marked as describing a region")
    per_pair = sigmoid_focal_loss(logits[valid], targets[valid].float(), alpha, gamma)
    return per_pair.sum() / targets.bool().sum().clamp_min(1)


def filip_similarity(image_tokens: Tensor, text_tokens: Tensor,
                     image_mask: Tensor | None = None, text_mask: Tensor | None = None
                     ) -> tuple[Tensor, Tensor]:
    """FILIP's token-wise late interaction for every image-caption pair (Yao et al. 2022).

    image_tokens: (B, N, D), text_tokens: (C, L, D) float (cosine: both normalised here).
    image_mask: (B, N), text_mask: (C, L), 1 = real token, 0 = padding (padding is never a
    maximum and never averaged).  Returns ``(image_to_text (B, C), text_to_image (B, C))``:
    ``image_to_text[b, c]`` = mean over real image tokens of b of the max cosine over real words
    of c; ``text_to_image[b, c]`` = mean over real words of c of the max over real tokens of b.
    """
    image_tokens = _tensor("image_tokens", image_tokens, 3, "(B, N, D)")
    text_tokens = _tensor("text_tokens", text_tokens, 3, "(C, L, D)")
    if image_tokens.shape[2] != text_tokens.shape[2]:
        raise ValueError(f"image_tokens and text_tokens: expected the same width D, got "
                         f"{image_tokens.shape[2]} and {text_tokens.shape[2]}")
    im = _mask("image_mask", image_mask, image_tokens.shape[:2], image_tokens.device)
    tm = _mask("text_mask", text_mask, text_tokens.shape[:2], image_tokens.device)
    if not im.any(1).all() or not tm.any(1).all():
        raise ValueError("image_mask and text_mask: expected at least one real token per row")
    img, txt = F.normalize(image_tokens, dim=-1), F.normalize(text_tokens, dim=-1)
    sim = torch.einsum("bnd,cld->bcnl", img, txt)                       # (B, C, N, L)
    pair = im[:, None, :, None] & tm[None, :, None, :]                  # real (token, word)
    sim = sim.masked_fill(~pair, float("-inf"))
    i2t = sim.max(dim=3).values.masked_fill(~im[:, None, :], 0.0)       # (B, C, N)
    t2i = sim.max(dim=2).values.masked_fill(~tm[None, :, :], 0.0)       # (B, C, L)
    return i2t.sum(2) / im.sum(1)[:, None], t2i.sum(2) / tm.sum(1)[None, :]
