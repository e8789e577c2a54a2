"""Distillation losses: soft targets with a temperature, region embeddings, dense predictions.

Chapter 11 (knowledge distillation).  Three pure functions of tensors:

* :func:`kd_loss` — Hinton, Vinyals, Dean (2015): the student matches the teacher's class
  distribution softened by a temperature T,
  ``T^2 * KL(softmax(t / T) || softmax(s / T))`` averaged over the samples.  The ``T^2`` keeps the
  gradient's size independent of T (the gradient of the softened loss scales as ``1 / T^2``);
* :func:`embedding_distill_loss` — ViLD (Gu et al. 2022), "ViLD-image": a region embedding of the
  student is pulled towards the teacher's image embedding of that region's crop, with the L1
  distance (ViLD's choice) or ``1 - cosine``;
* :func:`pixel_kd_loss` — pixel-wise distillation of dense predictions (Liu et al. 2019,
  "structured knowledge distillation for semantic segmentation"): :func:`kd_loss` at every pixel,
  optionally restricted to a mask of pixels.

The teacher's tensors are targets: each function detaches them, so no gradient can reach the
teacher through a loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["kd_loss", "embedding_distill_loss", "pixel_kd_loss", "EMBEDDING_DISTANCES"]

#: Distances of :func:`embedding_distill_loss`.
EMBEDDING_DISTANCES = ("l1", "cosine")


def _check_float(name: str, t, ndim: int | None = None, what: str = "") -> None:
    if not torch.is_tensor(t) or not t.is_floating_point():
        raise TypeError(f"{name} must be a float tensor{what}, got "
                        f"{getattr(t, 'dtype', type(t).__name__)}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must be{what}, got shape {tuple(t.shape)}")


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0.0 < float(temperature) < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float = 4.0) -> torch.Tensor:
    """Hinton's distillation loss (Hinton et al. 2015; chapter 11).

    student_logits, teacher_logits: (B, K) float, unnormalised class scores of the same B samples.
    temperature: T > 0; both distributions are ``softmax(logits / T)``.
    Returns a () float tensor, ``T^2 / B * sum_b KL(p_teacher_b || p_student_b)`` (0 when the
    logits are equal).  The teacher's logits are detached.
    Raises TypeError for non-float tensors; ValueError for shapes that are not (B, K), differ, or
    have B = 0, and for a temperature that is not a finite number > 0.
    """
    _check_float("student_logits", student_logits, 2, " (B, K)")
    _check_float("teacher_logits", teacher_logits, 2, " (B, K)")
    if teacher_logits.shape != student_logits.shape or student_logits.shape[0] == 0:
        raise ValueError(f"teacher_logits must match student_logits' (B, K) = "
                         f"{tuple(student_logits.shape)} with B >= 1, got "
                         f"{tuple(teacher_logits.shape)}")
    T = _check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits.float() / T, dim=1)   # (B, K)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / T, dim=1)
    p_teacher = log_p_teacher.exp()
    # p log(p / q) with 0 log 0 = 0, so a teacher may rule classes out with -inf logits
    kl = torch.where(p_teacher > 0, p_teacher * (log_p_teacher - log_p_student),
                     torch.zeros_like(p_teacher)).sum(dim=1)                 # (B,)
    return kl.mean() * T * T


def embedding_distill_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor,
                           distance: str = "l1", normalize: bool = True) -> torch.Tensor:
    """ViLD-image embedding distillation (Gu et al. 2022; chapter 11).

    student_emb: (N, D) float region embeddings of the student; teacher_emb: (N, D) float, the
    teacher's embeddings of the same N regions (e.g. of their crops), detached here.
    distance: ``"l1"`` — mean over regions of ``sum_d |s - t|`` (ViLD's loss), or ``"cosine"`` —
    mean of ``1 - cos(s, t)``.  normalize: L2-normalise both first (for ``"l1"``; cosine always
    compares directions).  Returns a () float tensor, 0 for N = 0 (no region, no loss).
    Raises TypeError for non-float tensors; ValueError for shapes that are not (N, D) or differ,
    and for an unknown ``distance``.
    """
    _check_float("student_emb", student_emb, 2, " (N, D)")
    _check_float("teacher_emb", teacher_emb, 2, " (N, D)")
    if teacher_emb.shape != student_emb.shape:
        raise ValueError(f"teacher_emb must match student_emb's (N, D) = "
                         f"{tuple(student_emb.shape)}, got {tuple(teacher_emb.shape)}")
    if distance not in EMBEDDING_DISTANCES:
        raise ValueError(f"distance must be one of {EMBEDDING_DISTANCES}, got {distance!r}")
    if student_emb.shape[0] == 0:
        return student_emb.sum() * 0.0
    s, t = student_emb.float(), teacher_emb.detach().float()
    if distance == "cosine":
        return (1.0 - F.cosine_similarity(s, t, dim=1)).mean()
    if normalize:
        s, t = F.normalize(s, dim=1), F.normalize(t, dim=1)
    return (s - t).abs().sum(dim=1).mean()


def pixel_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  temperature: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise distillation of dense predictions (chapter 11): :func:`kd_loss` per pixel.

    student_logits, teacher_logits: (B, K, H, W) float class scores per pixel (same shape).
    mask: optional (B, H, W) bool, the pixels to distil (True = distil); all pixels if None.
    Returns a () float tensor: the mean over the distilled pixels of
    ``T^2 * KL(softmax(t / T) || softmax(s / T))``; 0 when the mask selects no pixel.
    Raises TypeError for non-float logits or a non-bool mask; ValueError for shapes that are not
    (B, K, H, W) or differ, a mask that is not (B, H, W), or a bad temperature.
    """
    _check_float("student_logits", student_logits, 4, " (B, K, H, W)")
    _check_float("teacher_logits", teacher_logits, 4, " (B, K, H, W)")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must match student_logits' (B, K, H, W) = "
                         f"{tuple(student_logits.shape)}, got {tuple(teacher_logits.shape)}")
    T = _check_temperature(temperature)
    B, K, H, W = student_logits.shape
    s = student_logits.permute(0, 2, 3, 1).reshape(-1, K)   # (B, K, H, W) -> (B H W, K)
    t = teacher_logits.permute(0, 2, 3, 1).reshape(-1, K)
    if mask is not None:
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a (B, H, W) bool tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if tuple(mask.shape) != (B, H, W):
            raise ValueError(f"mask must be (B, H, W) = {(B, H, W)}, got {tuple(mask.shape)}")
        keep = mask.reshape(-1)
        if not bool(keep.any()):
            return student_logits.sum() * 0.0
        s, t = s[keep], t[keep]
    return kd_loss(s, t, T)
