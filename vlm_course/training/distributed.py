"""torch.distributed helpers for contrastive pre-training: feature gathering and the CLIP loss.

Chapter 04 (and 13, scaling up).  A contrastive loss needs *every* pair in the global batch,
but under data parallelism each of the ``W`` ranks only holds its local shard of ``B`` rows.
The ranks therefore all-gather the features (``W * B`` rows) before building the logits.

Two ways to keep gradients flowing through the gather:

* ``gather_features(x, with_grad=False)`` - plain ``dist.all_gather`` (which has no autograd),
  then the local shard is put back in place as the live tensor.  Gradients reach only the
  local rows, which is exact when every rank computes the *full* ``WB x WB`` loss.
* ``gather_features(x, with_grad=True)`` - :class:`_AllGatherWithGrad`, an autograd Function whose
  backward all-reduces (sums) the incoming gradient over ranks and keeps the local slice, so a
  rank's features also receive the gradient from the other ranks' losses.

:func:`distributed_clip_loss` implements the "local loss" variant (open_clip's
``local_loss=True``): rank ``r`` only computes the rows of its own ``B`` images and ``B`` texts
against all ``W * B`` candidates (``2 * B * W * B`` logits instead of ``(W * B)^2``), and its
targets are offset by ``r * B``.  The mean over ranks of these local losses is the loss of one
process on the concatenated batch; with ``with_grad`` gathering and DDP's gradient *averaging*
the parameter gradients are exactly those of the single process.

Without an initialised process group (or with world size 1) everything falls back to the plain
single-process functions, so the same training code runs on a laptop.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from vlm_course.objectives.contrastive import check_pair, check_scalar, clip_loss, exp_scale

__all__ = ["distributed_clip_loss", "gather_features", "rank_and_world_size"]


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, or ``(0, 1)`` when there is none.
    Raises nothing."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns this rank's slice of the summed gradient.

    Forward: ``(B, D)`` on each of ``W`` ranks -> ``(W * B, D)`` (rank order).  Backward: the
    gradient ``g`` w.r.t. the gathered tensor differs per rank (each rank has its own loss), so
    the total gradient of the local rows is ``sum_r g_r[rank * B : (rank + 1) * B]``: an
    all-reduce (sum) followed by slicing.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        rank, world = rank_and_world_size()
        ctx.rank, ctx.batch = rank, x.shape[0]
        shards = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(shards, x.contiguous())
        return torch.cat(shards, dim=0)  # (W * B, D)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()  # all_reduce is in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def _check_equal_batches(x: Tensor, name: str) -> None:
    """all_gather needs the same (B, D) everywhere: compare shapes across ranks, fail clearly."""
    _, world = rank_and_world_size()
    shape = torch.tensor(list(x.shape), dtype=torch.long, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(world)]
    dist.all_gather(shapes, shape)
    seen = [tuple(s.tolist()) for s in shapes]
    if len(set(seen)) != 1:
        raise ValueError(f"{name} must have the same shape (B, D) on every rank, got {seen}")


def gather_features(x: Tensor, *, with_grad: bool = False, name: str = "x") -> Tensor:
    """Concatenate ``x`` from all ranks along the batch dimension, keeping the local gradient.

    Args:
        x: ``(B, D)`` float features of this rank (same shape on every rank).
        with_grad: ``False``: all-gather without autograd, then put the live local tensor back
            at rows ``rank * B : (rank + 1) * B`` (gradients flow to the local rows only, from
            this rank's loss).  ``True``: differentiable gather; the local rows receive the sum
            of the gradients of *all* ranks' losses.
        name: the argument name used in error messages.

    Returns:
        ``(W * B, D)`` in rank order; ``x`` itself when not distributed (``W = 1``).

    Raises:
        TypeError: ``x`` is not a float tensor.
        ValueError: ``x`` is not 2-D with ``B, D >= 1``, or its shape differs between ranks.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, D), got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D tensor (B, D) with B, D >= 1, got shape "
                         f"{tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    rank, world = rank_and_world_size()
    if world == 1:
        return x
    _check_equal_batches(x, name)
    if with_grad:
        return _AllGatherWithGrad.apply(x)
    shards = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(shards, x.detach().contiguous())
    shards[rank] = x  # the live tensor, so autograd reaches this rank's features
    return torch.cat(shards, dim=0)


def distributed_clip_loss(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor | float,
    *,
    local_loss: bool = True,
    gather_with_grad: bool = True,
    normalize: bool = True,
) -> Tensor:
    """CLIP's symmetric InfoNCE over the global batch of all ranks.

    Args:
        image_features, text_features: ``(B, D)`` float, this rank's shard, paired by row.
        logit_scale: **log-space** scale (as in
            :func:`vlm_course.objectives.contrastive.clip_loss`).
        local_loss: ``True``: this rank's ``B`` rows against all ``W * B`` columns, targets
            ``arange(B) + rank * B``; the returned value is this rank's share, and the mean over
            ranks equals the single-process loss on the concatenated batch.  ``False``: every rank
            builds the full ``(W * B) x (W * B)`` logits and returns the global loss itself.
        gather_with_grad: use the differentiable gather.  Required with ``local_loss=True``: there
            the other ranks' losses use this rank's features as negatives, and those gradient
            terms would be lost otherwise.  With ``local_loss=False`` and ``False`` here, each
            rank's feature gradient is exact but DDP's averaging makes the tower gradients
            ``1 / W`` of the single-process ones (``logit_scale``'s stays exact).
        normalize: L2-normalise both inputs first.

    Returns:
        A 0-d tensor.  Without a process group (or ``W = 1``) this is exactly ``clip_loss``.

    Raises:
        TypeError / ValueError: as :func:`vlm_course.objectives.contrastive.clip_loss` for the
            features and ``logit_scale``; ``ValueError`` for ``local_loss=True`` with
            ``gather_with_grad=False``, or features whose shape differs between ranks.
    """
    img, txt = check_pair("image_features", image_features, "text_features", text_features)
    scale = exp_scale(check_scalar("logit_scale", logit_scale))
    if local_loss and not gather_with_grad:
        raise ValueError(
            "gather_with_grad=False with local_loss=True drops the gradient that the other ranks' "
            "losses send to this rank's features; use gather_with_grad=True or local_loss=False"
        )
    rank, world = rank_and_world_size()
    if world == 1:
        return clip_loss(img, txt, logit_scale, normalize=normalize)
    if normalize:
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    all_img = gather_features(img, with_grad=gather_with_grad, name="image_features")  # (WB, D)
    all_txt = gather_features(txt, with_grad=gather_with_grad, name="text_features")  # (WB, D)
    if local_loss:
        B = img.shape[0]
        target = torch.arange(B, device=img.device) + rank * B  # local rows' partners
        logits_per_image = scale * img @ all_txt.T  # (B, WB)
        logits_per_text = scale * txt @ all_img.T  # (B, WB)
    else:
        target = torch.arange(all_img.shape[0], device=img.device)
        logits_per_image = scale * all_img @ all_txt.T  # (WB, WB)
        logits_per_text = logits_per_image.T
    return (
        F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_text, target)
    ) / 2
