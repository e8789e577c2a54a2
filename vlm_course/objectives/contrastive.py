"""Contrastive objectives: SimCLR's NT-Xent, CLIP's symmetric InfoNCE, UniCL and SigLIP.

Chapter 04 "Contrastive objectives".  Every function here is a pure function of tensors: no
parameters, no state, no randomness.  Shapes use the course vocabulary: ``B`` batch, ``D`` width.

Scale convention (one for the whole package)
--------------------------------------------
``logit_scale`` is always the **log-space** parameter, exactly as CLIP stores it
(``nn.Parameter(torch.tensor(math.log(1 / 0.07)))``).  The functions exponentiate it inside:
``logits = exp(logit_scale) * cos(image, text)``.  So ``logit_scale = log(1 / tau)`` for a
temperature ``tau``, and the multiplier ``exp(logit_scale)`` is capped at 100 by clamping the
parameter to ``<= log(100)`` after each optimiser step (the training loop does that, never the
loss).  Note that ``open_clip.loss.ClipLoss`` / ``SigLipLoss`` take the *already exponentiated*
scale.
SimCLR's NT-Xent keeps its paper's convention instead: a plain temperature ``tau`` (divide by it).

Embeddings are L2-normalised inside each loss when ``normalize=True`` (the default);
normalising an already normalised vector changes nothing, so the output of a model's
``encode_image`` / ``encode_text`` can be passed straight in.

Papers: Chen et al. 2020 (SimCLR), Radford et al. 2021 (CLIP), Yang et al. 2022 (UniCL),
Zhai et al. 2023 (SigLIP), van den Oord et al. 2018 (CPC / InfoNCE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CLIP_INIT_LOGIT_SCALE",
    "CLIP_MAX_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_BIAS",
    "check_pair",
    "check_scalar",
    "clip_logits",
    "clip_loss",
    "clip_loss_written_out",
    "exp_scale",
    "nt_xent_loss",
    "siglip_loss",
    "unicl_loss",
    "unicl_targets",
]

#: CLIP's initial log-scale, log(1 / 0.07): a temperature of 0.07.
CLIP_INIT_LOGIT_SCALE = math.log(1 / 0.07)
#: CLIP's cap on the log-scale, log(100): the multiplier never exceeds 100.
CLIP_MAX_LOGIT_SCALE = math.log(100.0)
#: SigLIP's initial log-scale, log(10).
SIGLIP_INIT_LOGIT_SCALE = math.log(10.0)
#: SigLIP's initial bias, -10 (most of the B^2 pairs are negatives).
SIGLIP_INIT_LOGIT_BIAS = -10.0


# ----------------------------------------------------------------------------- input checks
def _check_features(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, D), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (B, D) (2-D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have B >= 1 rows and D >= 1 columns, got {tuple(x.shape)}")
    return x


def check_pair(a_name: str, a: object, b_name: str, b: object) -> tuple[Tensor, Tensor]:
    """Check two paired feature batches: float tensors of the same shape ``(B, D)``.

    Row ``i`` of ``a`` is the partner of row ``i`` of ``b``.  Raises ``TypeError`` for a non-tensor
    or a non-float dtype and ``ValueError`` for a wrong or mismatched shape, naming ``a_name`` /
    ``b_name``.  Returns ``(a, b)`` unchanged.
    """
    a, b = _check_features(a_name, a), _check_features(b_name, b)
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape (B, D) (row i of one is paired with "
            f"row i of the other), got {a_name} {tuple(a.shape)} and {b_name} {tuple(b.shape)}"
        )
    return a, b


def check_scalar(name: str, value: object) -> Tensor | float:
    """Check a scalar such as ``logit_scale``: a finite int/float or a one-element tensor.

    Returns a Python ``float`` or a 0-d tensor (a one-element tensor reshaped to ``()``, so a
    learnable parameter keeps its gradient).  Raises ``TypeError`` / ``ValueError`` naming ``name``.
    """
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar (one element), got shape {tuple(value.shape)}"
            )
        return value.reshape(())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a float or a one-element tensor, got {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def exp_scale(log_scale: Tensor | float) -> Tensor | float:
    """``exp(log_scale)``: the logit multiplier from a log-space scale (``Tensor.exp`` for a
    tensor, keeping its gradient; ``math.exp`` for a float).  Raises nothing itself: check the
    value with :func:`check_scalar` first."""
    return log_scale.exp() if isinstance(log_scale, Tensor) else math.exp(log_scale)


def _check_labels(labels: object, batch: int) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of shape (B,), got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(f"labels must have shape (B,) = ({batch},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    return labels


# ----------------------------------------------------------------------------- SimCLR
def nt_xent_loss(
    z1: Tensor, z2: Tensor, temperature: float = 0.5, *, normalize: bool = True
) -> Tensor:
    """SimCLR's normalised-temperature cross-entropy (NT-Xent) over two augmented views.

    Args:
        z1: ``(B, D)`` float, projections of the first view of each image.
        z2: ``(B, D)`` float, projections of the second view (row ``i`` = same image as ``z1[i]``).
        temperature: ``tau > 0``, a plain temperature (the similarities are *divided* by it).
        normalize: L2-normalise the rows first, so the similarity is the cosine.

    Returns:
        A 0-d tensor: the mean over all ``2B`` anchors of

        ``l_i = -log( exp(s_{i,p(i)} / tau) / sum_{k != i} exp(s_{i,k} / tau) )``

        where the ``2B`` views are stacked as ``z = [z1; z2]``, ``s = z z^T`` is ``(2B, 2B)``,
        the positive of ``i`` is the other view ``p(i) = (i + B) mod 2B`` and the self-similarity
        ``k = i`` is excluded from the denominator (the other ``2B - 2`` views are negatives).
        This is the mean, as in ``pytorch_metric_learning.losses.NTXentLoss``; the SimCLR
        reference TensorFlow code reports twice this value (the sum of its two halves).

    Raises:
        TypeError: a feature batch is not a float tensor.
        ValueError: a feature batch is not ``(B, D)`` with ``B, D >= 1``, the two shapes differ, or
            ``temperature`` is not a finite float > 0.
    """
    z1, z2 = check_pair("z1", z1, "z2", z2)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not (temperature > 0 and math.isfinite(temperature))
    ):
        raise ValueError(f"temperature must be a finite float > 0, got {temperature!r}")
    B = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)  # (2B, D): views of image i at rows i and i + B
    if normalize:
        z = F.normalize(z, dim=-1)
    sim = z @ z.T / temperature  # (2B, 2B) scaled cosine similarities
    self_mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))  # a view is never its own negative
    positive = torch.arange(2 * B, device=z.device).roll(B)  # p(i) = (i + B) mod 2B
    return F.cross_entropy(sim, positive)


# ----------------------------------------------------------------------------- CLIP
def clip_logits(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor | float,
    *,
    normalize: bool = True,
) -> Tensor:
    """Scaled image-text cosine similarities: ``exp(logit_scale) * img @ txt^T``.

    Args:
        image_features: ``(B, D)`` float image embeddings.
        text_features: ``(B, D)`` float text embeddings; row ``i`` is the caption of image ``i``.
        logit_scale: **log-space** scale (float or 0-d tensor); exponentiated here.
        normalize: L2-normalise both inputs first.

    Returns:
        ``logits_per_image`` of shape ``(B, B)``: entry ``[i, j]`` scores image ``i`` against
        text ``j``.  Its transpose is ``logits_per_text``.

    Raises:
        TypeError: a feature batch is not a float tensor or ``logit_scale`` is not a number or
            tensor.
        ValueError: a feature batch is not ``(B, D)`` with ``B, D >= 1``, the two shapes differ, or
            ``logit_scale`` is not one finite number.
    """
    img, txt = check_pair("image_features", image_features, "text_features", text_features)
    scale = exp_scale(check_scalar("logit_scale", logit_scale))
    if normalize:
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    return scale * img @ txt.T  # (B, B)


def clip_loss(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor | float,
    *,
    normalize: bool = True,
) -> Tensor:
    """CLIP's symmetric InfoNCE loss (the cross-entropy version).

    With ``S = exp(logit_scale) * img @ txt^T`` of shape ``(B, B)`` and matched pairs on the
    diagonal::

        L = 1/2 * [ CE(S, arange(B))  +  CE(S^T, arange(B)) ]

    the mean of the image->text (rows) and text->image (columns) cross-entropies.

    Args:
        image_features, text_features: ``(B, D)`` float, paired by row.
        logit_scale: **log-space** scale (CLIP's parameter, initialised at ``log(1/0.07)``).
        normalize: L2-normalise both inputs first.

    Returns:
        A 0-d tensor.  Equal to :func:`clip_loss_written_out` and to
        ``open_clip.loss.ClipLoss()(img_n, txt_n, logit_scale.exp())``.

    Raises:
        TypeError: a feature batch is not a float tensor or ``logit_scale`` is not a number or
            tensor.
        ValueError: a feature batch is not ``(B, D)`` with ``B, D >= 1``, the two shapes differ, or
            ``logit_scale`` is not one finite number.
    """
    logits = clip_logits(image_features, text_features, logit_scale, normalize=normalize)
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def clip_loss_written_out(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor | float,
    *,
    normalize: bool = True,
) -> Tensor:
    """CLIP's loss with the log-softmax written out by hand (same value as :func:`clip_loss`).

    For ``S = exp(logit_scale) * img @ txt^T`` (``B x B``)::

        L_i2t = mean_i [ logsumexp_j S[i, j] - S[i, i] ]     (softmax over texts, per image)
        L_t2i = mean_j [ logsumexp_i S[i, j] - S[j, j] ]     (softmax over images, per text)
        L     = (L_i2t + L_t2i) / 2

    ``logsumexp`` is computed stably as ``m + log sum exp(S - m)`` with ``m`` the row (column) max.
    Arguments and errors as in :func:`clip_loss`.
    """
    S = clip_logits(image_features, text_features, logit_scale, normalize=normalize)  # (B, B)
    diag = S.diagonal()  # (B,) matched pairs
    row_max = S.max(dim=1, keepdim=True).values.detach()  # (B, 1): max over texts
    log_z_rows = row_max.squeeze(1) + (S - row_max).exp().sum(dim=1).log()  # (B,)
    col_max = S.max(dim=0, keepdim=True).values.detach()  # (1, B): max over images
    log_z_cols = col_max.squeeze(0) + (S - col_max).exp().sum(dim=0).log()  # (B,)
    loss_image_to_text = (log_z_rows - diag).mean()
    loss_text_to_image = (log_z_cols - diag).mean()
    return (loss_image_to_text + loss_text_to_image) / 2


# ----------------------------------------------------------------------------- UniCL
def unicl_targets(labels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """UniCL's soft targets: ``T[i, j] = [y_i == y_j] / #{k : y_k == y_i}``.

    Args:
        labels: ``(B,)`` integer class ids, one per image-text pair (``B >= 1``).
        dtype: floating dtype of the result; :func:`unicl_loss` passes its logits' dtype so that
            float64 targets are exact (``1/3`` computed in float32 and cast is off by ~1e-8).

    Returns:
        ``(B, B)`` matrix of ``dtype`` whose rows sum to 1; it is symmetric in its support and
        equals the identity when all labels are distinct.

    Raises:
        TypeError: ``labels`` is not an integer tensor, or ``dtype`` is not a floating dtype.
        ValueError: ``labels`` is not 1-D or is empty.
    """
    if isinstance(labels, Tensor) and labels.dim() != 1:
        raise ValueError(f"labels must have shape (B,) (1-D), got {tuple(labels.shape)}")
    labels = _check_labels(labels, labels.shape[0] if isinstance(labels, Tensor) else 0)
    if labels.shape[0] < 1:
        raise ValueError("labels must hold at least one class id (B >= 1), got an empty tensor")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    same = (labels[:, None] == labels[None, :]).to(dtype)  # (B, B) 1 where labels agree
    return same / same.sum(dim=1, keepdim=True)


def unicl_loss(
    image_features: Tensor,
    text_features: Tensor,
    labels: Tensor,
    logit_scale: Tensor | float,
    *,
    normalize: bool = True,
) -> Tensor:
    """UniCL's image-text-label contrastive loss (bidirectional, soft targets).

    Every pair with the same label is a positive.  With ``S`` as in :func:`clip_loss` and
    ``T = unicl_targets(labels)``::

        L_i2t = - mean_i sum_j T[i, j] log softmax_j(S[i, :])
        L_t2i = - mean_j sum_i T[j, i] log softmax_i(S[:, j])
        L     = (L_i2t + L_t2i) / 2

    When all labels are distinct ``T`` is the identity and ``L`` equals :func:`clip_loss`
    exactly; when two captions share a label, CLIP would push them apart (a false negative)
    while UniCL pulls them together.

    Args:
        image_features, text_features: ``(B, D)`` float, paired by row.
        labels: ``(B,)`` integer class id of each pair.
        logit_scale: **log-space** scale, exponentiated inside.
        normalize: L2-normalise both inputs first.

    Returns:
        A 0-d tensor.

    Raises:
        TypeError: a feature batch is not a float tensor, ``labels`` is not an integer tensor, or
            ``logit_scale`` is not a number or tensor.
        ValueError: a feature batch is not ``(B, D)`` with ``B, D >= 1``, the two shapes differ,
            ``labels`` is not ``(B,)``, or ``logit_scale`` is not one finite number.
    """
    S = clip_logits(image_features, text_features, logit_scale, normalize=normalize)  # (B, B)
    labels = _check_labels(labels, S.shape[0]).to(S.device)
    T = unicl_targets(labels, S.dtype)  # (B, B) rows sum to 1; symmetric pattern
    loss_image_to_text = -(T * S.log_softmax(dim=1)).sum(dim=1).mean()
    loss_text_to_image = -(T * S.T.log_softmax(dim=1)).sum(dim=1).mean()
    return (loss_image_to_text + loss_text_to_image) / 2


# ----------------------------------------------------------------------------- SigLIP
def siglip_loss(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor | float,
    logit_bias: Tensor | float,
    *,
    normalize: bool = True,
) -> Tensor:
    """SigLIP's pairwise sigmoid loss: every one of the ``B^2`` pairs is a binary problem.

    With ``Z = exp(logit_scale) * img @ txt^T + logit_bias`` (``B x B``) and ``y = 2 I - 1``
    (+1 on the diagonal, -1 elsewhere)::

        L = - (1 / B) * sum_{i, j} log sigmoid(y[i, j] * Z[i, j])

    No softmax couples the rows, so the loss needs no all-gather of the full batch.

    Args:
        image_features, text_features: ``(B, D)`` float, paired by row.
        logit_scale: **log-space** scale (SigLIP initialises it at ``log 10``), exponentiated here.
        logit_bias: additive bias, *not* in log space (SigLIP initialises it at ``-10``).
        normalize: L2-normalise both inputs first.

    Returns:
        A 0-d tensor.  Equal to ``open_clip.loss.SigLipLoss()(img_n, txt_n, exp(s), b)``.

    Raises:
        TypeError: a feature batch is not a float tensor or ``logit_scale`` / ``logit_bias`` is not
            a number or tensor.
        ValueError: a feature batch is not ``(B, D)`` with ``B, D >= 1``, the two shapes differ, or
            ``logit_scale`` / ``logit_bias`` is not one finite number.
    """
    Z = clip_logits(image_features, text_features, logit_scale, normalize=normalize)  # (B, B)
    Z = Z + check_scalar("logit_bias", logit_bias)
    B = Z.shape[0]
    sign = 2 * torch.eye(B, dtype=Z.dtype, device=Z.device) - 1  # +1 matched, -1 unmatched
    return -F.logsigmoid(sign * Z).sum() / B
