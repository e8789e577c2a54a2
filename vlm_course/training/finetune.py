"""Training a classifier on a small fixed labelled set: from scratch or fine-tuning.

Chapter 01 (the paradigms of visual recognition): the second paradigm trains a network from
random initialisation on the target task's labels; the third starts from a network pre-trained
with labels on another task and fine-tunes all its weights (Yosinski et al. 2014; He et al.
2016).  Both are this one function on the one training loop
(:func:`vlm_course.training.loop.train`): the same budget of steps, batches drawn at random
(with a seeded generator) from the ``k`` labelled examples per class, each image shifted by a
few pixels at random (zero padding) so a handful of examples is not memorised pixel for pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vlm_course.training.loop import TrainConfig, train

__all__ = ["LabelledSetBatches", "accuracy", "classification_step", "fit_classifier"]


def _check_set(images, labels) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0 \
            or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a non-empty float (N, C, H, W) tensor, got {got}")
    if (not isinstance(labels, torch.Tensor) or labels.shape != (len(images),)
            or labels.is_floating_point()):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be ({len(images)},) integer class ids, got {got}")


class LabelledSetBatches:
    """``source(step, rank=0, world_size=1) -> (images (b, C, H, W), labels (b,))``: ``b =
    min(batch_size, N)`` examples of the fixed set drawn without replacement by a generator
    seeded with ``(seed, step)``, each shifted by up to ``shift`` pixels (zero padding).

    Raises ValueError for bad ``images`` / ``labels`` (see :func:`fit_classifier`), a
    ``batch_size`` < 1 or a ``shift`` < 0.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, *,
                 seed: int = 0, shift: int = 4) -> None:
        _check_set(images, labels)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"shift must be an int >= 0 (pixels), got {shift!r}")
        self.images, self.labels = images, labels.long()
        self.batch_size, self.seed, self.shift = min(batch_size, len(images)), seed, shift

    def __call__(self, step: int, rank: int = 0, world_size: int = 1):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randperm(len(self.images), generator=g)[: self.batch_size]
        x = self.images[idx]                                        # (b, C, H, W)
        if self.shift:
            s = self.shift
            B, _, H, W = x.shape
            padded = F.pad(x, (s, s, s, s))                         # (b, C, H + 2s, W + 2s)
            dy, dx = torch.randint(0, 2 * s + 1, (2, B), generator=g)
            x = torch.stack([padded[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])
        return x, self.labels[idx]


def classification_step(model, batch) -> tuple[torch.Tensor, dict]:
    """``(model, (images, labels)) -> (cross-entropy, {"acc": batch accuracy})``; ``model``
    returns ``(b, K)`` logits."""
    images, labels = batch
    logits = model(images).float()
    return F.cross_entropy(logits, labels), {"acc": float((logits.argmax(1) == labels)
                                                          .float().mean())}


def fit_classifier(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                   steps: int = 150, batch_size: int = 64, lr: float = 2e-3,
                   weight_decay: float = 0.05, seed: int = 0, shift: int = 4) -> list[dict]:
    """Train all weights of ``model`` (images -> (b, K) logits) on a fixed labelled set.

    images: (N, C, H, W) float; labels: (N,) int class ids.  AdamW, ``steps`` steps with a 10%
    linear warmup and cosine decay, gradient clipping at 1 (the loop's recipe), batches from
    :class:`LabelledSetBatches`.  Returns the loop's per-step records; the model is left in
    eval mode.  Raises ValueError for bad ``images`` / ``labels`` / ``batch_size`` / ``shift``
    and what :class:`~vlm_course.training.loop.TrainConfig` raises for bad ``steps`` / ``lr``.
    """
    source = LabelledSetBatches(images, labels, batch_size, seed=seed, shift=shift)
    config = TrainConfig(steps=steps, batch_size=source.batch_size, lr=lr,
                         weight_decay=weight_decay, warmup_steps=max(1, steps // 10),
                         grad_clip=1.0, seed=seed, checkpoint_every=max(steps, 1))
    model.train()
    history = train(model, source, classification_step, config, desc="fit classifier")
    model.eval()
    return history


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 250) -> float:
    """Top-1 accuracy in [0, 1] of ``model``'s logits on (N, C, H, W) ``images`` with (N,)
    ``labels``, in eval mode, in batches.  Raises ValueError for bad ``images`` / ``labels``."""
    _check_set(images, labels)
    was_training = model.training
    model.eval()
    pred = torch.cat([model(images[i:i + batch_size]).argmax(1)
                      for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return float((pred == labels).float().mean())
