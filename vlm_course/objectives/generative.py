"""Generative pre-training objectives as pure loss functions (chapter 05).

The survey's second family: the model *reconstructs* what was hidden or *generates* text.

* :func:`mae_loss` — masked image modelling (MAE, He et al. 2022): pixel MSE per patch, averaged
  over the removed patches only, optionally against per-patch normalised targets.
* :func:`mlm_loss` — masked language modelling (BERT, Devlin et al. 2019): cross-entropy at the
  chosen tokens (labels ``-100`` elsewhere).
* :func:`masked_cross_modal_loss` — masked cross-modal modelling (FLAVA, Singh et al. 2022;
  M3AE, Geng et al. 2022): patches and words of one image-text pair are masked together and both
  are reconstructed by a fused encoder; the loss is a weighted sum of the two terms above.
* :func:`caption_loss` — image-to-text generation with teacher forcing (SimVLM, Wang et al. 2022;
  CoCa, Yu et al. 2022): next-token cross-entropy, padding ignored.  :func:`teacher_forcing`
  splits a tokenised caption into decoder inputs and targets.

Shapes: B batch, N patches, K = P*P*C values per patch, L text length, V vocabulary size.
This module imports nothing from the course, so models (the MAE's ``forward_loss``) can use it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["mae_loss", "mlm_loss", "CrossModalLoss", "masked_cross_modal_loss",
           "teacher_forcing", "caption_loss", "IGNORE_INDEX"]

#: The label of a position that does not count (``F.cross_entropy``'s default ``ignore_index``).
IGNORE_INDEX = -100


def _check_float(name: str, t: torch.Tensor, dims: int, shape_text: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor {shape_text}, got {type(t).__name__}")
    if t.dim() != dims:
        raise ValueError(f"{name} must have shape {shape_text}, got {tuple(t.shape)}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name} must be a float tensor, got dtype {t.dtype}")


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             norm_pix_loss: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """MAE's reconstruction loss (He et al. 2022; chapter 05).

    pred: ``(B, N, K)`` float, the decoder's pixels for every patch.
    target: ``(B, N, K)`` float, the true patches (``patchify(images)``).
    mask: ``(B, N)``, 1 = removed (the patches that count), 0 = visible.
    norm_pix_loss: normalise each target patch by its own mean and (unbiased) variance first:
        ``(t - mean) / sqrt(var + eps)`` (MAE's better-features variant).
    Returns a ``()`` float: the per-patch mean squared error averaged over removed patches.
    Raises ``ValueError`` on mismatched shapes or a mask that removes nothing (the loss would be
    0 / 0), ``TypeError`` for non-float predictions or targets.
    """
    _check_float("pred", pred, 3, "(B, N, K)")
    _check_float("target", target, 3, "(B, N, K)")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape (B, N, K), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must have shape (B, N) = {tuple(pred.shape[:2])}, "
                         f"got {tuple(mask.shape)}")
    mask = mask.to(pred.dtype)
    removed = mask.sum()
    if removed == 0:
        raise ValueError("mask removes no patch (all zeros): the MAE loss is an average over "
                         "removed patches only")
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased, as MAE
        target = (target - mean) / (var + eps) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / removed


def _check_logits_labels(logits: torch.Tensor, labels: torch.Tensor, names: tuple[str, str]):
    _check_float(names[0], logits, 3, "(B, L, V)")
    if not isinstance(labels, torch.Tensor) or labels.shape != logits.shape[:2]:
        raise ValueError(f"{names[1]} must have shape (B, L) = {tuple(logits.shape[:2])}, "
                         f"got {tuple(getattr(labels, 'shape', ()))}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"{names[1]} must be an integer tensor, got dtype {labels.dtype}")


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked language modelling loss (BERT, Devlin et al. 2019; chapter 05).

    logits: ``(B, L, V)`` float, unnormalised scores at every text position.
    labels: ``(B, L)`` long, the original id at chosen positions and ``-100`` elsewhere (as
        :func:`vlm_course.objectives.masking.bert_masking` returns them).
    Returns a ``()`` float: the mean cross-entropy over chosen positions, or 0 (still
    differentiable) when a batch happens to choose none.
    Raises ``ValueError`` on mismatched shapes, ``TypeError`` on wrong dtypes.
    """
    _check_logits_labels(logits, labels, ("logits", "labels"))
    total = F.cross_entropy(logits.transpose(1, 2), labels.long(), ignore_index=IGNORE_INDEX,
                            reduction="sum")
    count = (labels != IGNORE_INDEX).sum().clamp(min=1)
    return total / count


class CrossModalLoss(NamedTuple):
    """Result of :func:`masked_cross_modal_loss`: the weighted total and its two terms (``()``)."""

    loss: torch.Tensor
    image: torch.Tensor
    text: torch.Tensor


def masked_cross_modal_loss(pixel_pred: torch.Tensor, patches: torch.Tensor,
                            image_mask: torch.Tensor, word_logits: torch.Tensor,
                            word_labels: torch.Tensor, *, image_weight: float = 1.0,
                            text_weight: float = 1.0,
                            norm_pix_loss: bool = False) -> CrossModalLoss:
    """Masked cross-modal modelling (FLAVA, Singh et al. 2022; M3AE, Geng et al. 2022; ch. 05).

    One image-text pair, patches and words masked together, one fused encoder predicts both.
    pixel_pred, patches: ``(B, N, K)`` float, predicted and true patches.
    image_mask: ``(B, N)``, 1 = masked patch (those count).
    word_logits: ``(B, L, V)`` float; word_labels: ``(B, L)`` long with ``-100`` where no word
        was masked.
    Returns :class:`CrossModalLoss` ``(image_weight * image + text_weight * text, image, text)``
    with ``image`` = :func:`mae_loss` and ``text`` = :func:`mlm_loss`.
    Raises what those two raise, and ``ValueError`` for a negative weight or a batch size that
    differs between the image and the text inputs.
    """
    for name, wgt in (("image_weight", image_weight), ("text_weight", text_weight)):
        if not wgt >= 0:
            raise ValueError(f"{name} must be >= 0, got {wgt}")
    if pixel_pred.shape[:1] != word_logits.shape[:1]:
        raise ValueError(f"pixel_pred and word_logits must share the batch size B, got "
                         f"{tuple(pixel_pred.shape)} and {tuple(word_logits.shape)}")
    image = mae_loss(pixel_pred, patches, image_mask, norm_pix_loss=norm_pix_loss)
    text = mlm_loss(word_logits, word_labels)
    return CrossModalLoss(image_weight * image + text_weight * text, image, text)


def teacher_forcing(input_ids: torch.Tensor, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs and next-token targets of tokenised captions (chapter 05).

    input_ids: ``(B, L)`` long, ``[SOS] w1 .. wn [EOS] [PAD]..``.
    Returns ``(inputs, targets)``, both ``(B, L - 1)``: ``inputs = input_ids[:, :-1]``
    (``[SOS] w1 .. wn``; the model reads the *true* previous words, not its own guesses) and
    ``targets = input_ids[:, 1:]`` (``w1 .. wn [EOS]``) with ``pad_id`` where padding follows.
    Raises ``ValueError`` for a shape other than ``(B, L >= 2)``, ``TypeError`` for float ids.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 2:
        raise ValueError(f"input_ids must have shape (B, L >= 2), "
                         f"got {tuple(getattr(input_ids, 'shape', ()))}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
    return input_ids[:, :-1], input_ids[:, 1:]


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Captioning loss with teacher forcing (SimVLM's PrefixLM; CoCa's caption term; ch. 05).

    logits: ``(B, L, V)`` float, the scores for the next token at each position.
    targets: ``(B, L)`` long, the true next tokens; positions equal to ``pad_id`` do not count.
    Returns a ``()`` float: the mean token cross-entropy over non-padding targets (equal to
    open_clip's ``CoCaLoss`` caption term with ``caption_loss_weight=1``).
    Raises ``ValueError`` on mismatched shapes or when every target is padding, ``TypeError`` on
    wrong dtypes.
    """
    _check_logits_labels(logits, targets, ("logits", "targets"))
    if bool((targets == pad_id).all()):
        raise ValueError(f"targets are all padding (pad_id={pad_id}): nothing to predict")
    return F.cross_entropy(logits.transpose(1, 2), targets.long(), ignore_index=pad_id)
