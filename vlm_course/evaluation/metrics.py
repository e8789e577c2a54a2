"""Scores for zero-shot predictions: top-k accuracy, the confusion matrix and mean IoU.

Chapter 08 (zero-shot prediction).  The survey's zero-shot tables report top-1 accuracy for
classification (CLIP, Radford et al. 2021, also top-5 on ImageNet) and mean intersection-over-union
(mIoU) for semantic segmentation (MaskCLIP, Zhou et al. 2022).  Box AP for detection lives in
:mod:`vlm_course.evaluation.box_ap`.

Conventions: classes are integer ids ``0 .. K - 1``; a confusion matrix has the *true* class on the
rows and the *predicted* class on the columns.  mIoU is the dataset-level definition used by
semantic segmentation benchmarks: intersections and unions are summed over every pixel of every
image first, then IoU is taken per class and averaged over the classes that occur (in the
prediction or the ground truth); a class absent from both is left out, not counted as 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["topk_accuracy", "confusion_matrix", "iou_per_class", "mean_iou"]


def _check_int_tensor(name: str, t) -> None:
    if not torch.is_tensor(t) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class ids, got "
                        f"{getattr(t, 'dtype', type(t).__name__)}")


def _check_range(name: str, t: torch.Tensor, num_classes: int, ignore: int | None = None) -> None:
    vals = t if ignore is None else t[t != ignore]
    if vals.numel() and (int(vals.min()) < 0 or int(vals.max()) >= num_classes):
        raise ValueError(f"{name} must hold class ids in [0, {num_classes}), got values in "
                         f"[{int(vals.min())}, {int(vals.max())}]")


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                  ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Fraction of samples whose true class is among the ``k`` highest logits, for each ``k``.

    logits: (B, K) float scores (any scale; only their order matters).
    labels: (B,) integer class ids in ``[0, K)``.
    ks: cut-offs; a ``k`` larger than K is clipped to K (so top-K accuracy is 1).
    Returns ``{"top1": float, "top5": float, ...}`` in [0, 1].  Ties between logits are broken by
    :func:`torch.topk` (lowest class id first on CPU); scores of a real model rarely tie.
    Raises ValueError for mismatched shapes, an empty batch, labels out of range or ``k < 1``;
    TypeError for non-integer labels.
    """
    if not torch.is_tensor(logits) or logits.ndim != 2:
        raise ValueError(f"logits must be a (B, K) tensor, got {getattr(logits, 'shape', logits)}")
    _check_int_tensor("labels", labels)
    B, K = logits.shape
    if labels.shape != (B,) or B == 0:
        raise ValueError(f"labels must be (B,) = ({B},) with B >= 1, got {tuple(labels.shape)}")
    _check_range("labels", labels, K)
    if isinstance(ks, int) or len(ks) == 0 or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of integers >= 1, got {ks!r}")
    top = logits.topk(min(max(int(k) for k in ks), K), dim=1).indices   # (B, k_max)
    hit = top == labels.to(top.device)[:, None]                          # (B, k_max) bool
    return {f"top{int(k)}": float(hit[:, : min(int(k), K)].any(dim=1).float().mean()) for k in ks}


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: entry ``[t, p]`` is how many samples of true class t were predicted p.

    pred, target: integer tensors of the same shape (any shape, e.g. (B,) labels or (B, H, W)
    masks) holding class ids in ``[0, num_classes)``.  Rows sum to the class frequencies.
    Raises ValueError for mismatched shapes, ids out of range or ``num_classes < 1``; TypeError
    for float inputs.
    """
    _check_int_tensor("pred", pred)
    _check_int_tensor("target", target)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    _check_range("pred", pred, num_classes)
    _check_range("target", target, num_classes)
    K = num_classes
    flat = target.reshape(-1).long() * K + pred.reshape(-1).long().to(target.device)
    return torch.bincount(flat, minlength=K * K).reshape(K, K).cpu()


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """(K,) float IoU of each class from a (K, K) confusion matrix; NaN for a class that occurs
    neither in the prediction nor in the ground truth.

    IoU_k = TP_k / (TP_k + FP_k + FN_k) = C[k, k] / (row_k + column_k - C[k, k]).
    """
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got {tuple(confusion.shape)}")
    c = confusion.double()
    tp = c.diagonal()
    union = c.sum(dim=0) + c.sum(dim=1) - tp
    iou = tp / union.clamp(min=1)
    return torch.where(union > 0, iou, torch.full_like(iou, float("nan"))).float()


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
             ignore_index: int | None = None) -> dict:
    """Dataset-level mean IoU of predicted masks against ground-truth masks (chapter 08).

    pred: (B, H, W) integer predicted class per pixel; target: (B, H, W) integer true class per
    pixel (ShapeWorld's ``semantic_masks``: 0 = background, 1 + shape id).  Both hold ids in
    ``[0, num_classes)``; pixels where ``target == ignore_index`` are left out.
    Returns ``{"miou": float, "iou": (K,) float tensor (NaN = class absent from both),
    "pixel_accuracy": float, "confusion": (K, K) int64}``.  mIoU averages the non-NaN entries.
    Raises ValueError when the masks differ in size (e.g. a (B, 12, 12) prediction against
    (B, 48, 48) masks: upsample first), are not 3-D, or hold ids out of range; TypeError for
    float masks (pass class ids, not logits).
    """
    _check_int_tensor("pred", pred)
    _check_int_tensor("target", target)
    if target.ndim != 3:
        raise ValueError(f"target must be (B, H, W) masks, got {tuple(target.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"pred must have the masks' size (B, H, W) = {tuple(target.shape)}, got "
                         f"{tuple(pred.shape)} (upsample the prediction to the mask size)")
    keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None \
        else target != ignore_index
    conf = confusion_matrix(pred[keep], target[keep], num_classes)
    iou = iou_per_class(conf)
    present = ~iou.isnan()
    total = int(conf.sum())
    return {"miou": float(iou[present].mean()) if present.any() else float("nan"),
            "iou": iou, "pixel_accuracy": float(conf.diagonal().sum()) / max(total, 1),
            "confusion": conf}
