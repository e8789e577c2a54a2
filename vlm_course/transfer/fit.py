"""Fitting a transfer method on a few-shot set: a small, seeded optimisation loop (chapter 10).

Every method of :mod:`vlm_course.transfer` is trained the same way: cross-entropy of its (B, K)
logits against the few-shot labels, AdamW over the method's *own* parameters only (the VLM is
frozen and not even visible to the optimiser), linear warmup then cosine decay
(:func:`vlm_course.training.optim.lr_at`), gradient clipping, mini-batches from a seeded
permutation of the few-shot set.  Methods with ``uses_image_features`` are fitted on image
features encoded once up front (the frozen encoder in eval mode gives the same features at every
step); the others (VPT, image-side LoRA) run the image tower at every step.

Why not :func:`vlm_course.training.loop.train`?  A few-shot fit is 50-300 steps over at most a few
hundred images, taking seconds: checkpoints, resume and metrics files would cost more than the fit
and protect nothing, and the general loop's AdamW groups decide weight decay by parameter names
made for pre-training.  The loop below is the same recipe in thirty lines.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vlm_course.training.optim import lr_at, set_lr

__all__ = ["FitConfig", "FitResult", "fit", "predict", "accuracy", "count_trainable"]


@dataclass
class FitConfig:
    """Optimisation of a few-shot fit: ``steps`` AdamW steps of ``batch_size`` examples (the whole
    set when it is smaller), peak ``lr`` after ``warmup_steps``, cosine to 0, ``weight_decay``,
    global grad-norm clip ``grad_clip`` (None: off), ``seed`` for the batch order."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    grad_clip: float | None = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"FitConfig.{name} must be an int >= {low}, got {value!r}")
        for name, ok, allowed in (("lr", lambda v: v > 0, "> 0"),
                                  ("weight_decay", lambda v: v >= 0, ">= 0")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or not ok(value):
                raise ValueError(f"FitConfig.{name} must be a finite number {allowed}, "
                                 f"got {value!r}")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or not isinstance(
                self.grad_clip, (int, float)) or not self.grad_clip > 0):
            raise ValueError(f"FitConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"FitConfig.seed must be an int, got {self.seed!r}")

    @classmethod
    def tiny(cls) -> FitConfig:
        return cls(steps=5, batch_size=8, warmup_steps=1)


@dataclass
class FitResult:
    """What a fit did: per-step losses, wall time and this process's CPU time in seconds (the
    latter barely moves with other jobs on a shared machine), trainable parameter count."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    trainable: int = 0


def count_trainable(method: torch.nn.Module) -> int:
    """Number of scalars in ``method``'s parameters that require a gradient."""
    return sum(p.numel() for p in method.parameters() if p.requires_grad)


def _inputs(method, inputs: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, H, W) -> features (N, E) once, for methods on frozen features."""
    if not torch.is_tensor(inputs) or inputs.dim() not in (2, 4) or \
            not inputs.is_floating_point():
        raise ValueError("inputs must be float images (N, 3, H, W) or image features (N, E), got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    if inputs.dim() == 4 and method.uses_image_features:
        return method.encode_images(inputs)
    if inputs.dim() == 2 and not method.uses_image_features:
        raise ValueError(f"inputs must be images (N, 3, H, W) for {type(method).__name__} (it "
                         f"changes the image encoder), got features {tuple(inputs.shape)}")
    return inputs


def _logits(method, x: torch.Tensor) -> torch.Tensor:
    return method.logits_from_features(x) if x.dim() == 2 else method(x)


def fit(method, inputs: torch.Tensor, labels: torch.Tensor,
        config: FitConfig | None = None) -> FitResult:
    """Train ``method``'s own parameters on ``(inputs, labels)``; returns a :class:`FitResult`.

    inputs: (N, 3, H, W) float images, or (N, E) unit image features for a method with
    ``uses_image_features``; labels: (N,) long in ``[0, K)``.  A method without trainable
    parameters (zero-shot, Tip-Adapter) returns at once with no losses.  The method is left in
    eval mode.  Raises ValueError for bad inputs or labels.
    """
    config = FitConfig() if config is None else config
    x = _inputs(method, inputs)
    if not torch.is_tensor(labels) or labels.dtype != torch.long or labels.shape != x.shape[:1]:
        raise ValueError(f"labels must be a long tensor of shape (N={x.shape[0]},), got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)} "
                         f"{tuple(getattr(labels, 'shape', ()))}")
    K = method.num_classes
    if labels.numel() and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must lie in [0, K={K}), got min {int(labels.min())}, "
                         f"max {int(labels.max())}")
    result = FitResult(trainable=count_trainable(method))
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        method.eval()
        return result
    device = method.device
    x, y = x.to(device), labels.to(device)
    N = x.shape[0]
    B = min(config.batch_size, N)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    order, cursor = torch.randperm(N, generator=generator), 0
    start, start_cpu = time.perf_counter(), time.process_time()
    method.train()
    for step in range(config.steps):
        if cursor + B > N:  # a new epoch: a new permutation
            order, cursor = torch.randperm(N, generator=generator), 0
        idx = order[cursor:cursor + B].to(device)
        cursor += B
        set_lr(optimizer, lr_at(step, config.lr, config.warmup_steps, config.steps))
        loss = F.cross_entropy(_logits(method, x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        result.losses.append(float(loss.detach()))
    method.eval()
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - start_cpu
    return result


@torch.no_grad()
def predict(method, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, K) float CPU logits of ``method`` on images (N, 3, H, W) or features (N, E)."""
    x = _inputs(method, inputs)
    was_training = method.training
    method.eval()
    try:
        return torch.cat([_logits(method, x[i:i + batch_size].to(method.device)).float().cpu()
                          for i in range(0, x.shape[0], batch_size)])
    finally:
        method.train(was_training)


def accuracy(method, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of ``method`` on ``(inputs, labels)``."""
    logits = predict(method, inputs, batch_size)
    if not torch.is_tensor(labels) or labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape (N={logits.shape[0]},), got "
                         f"{tuple(getattr(labels, 'shape', ()))}")
    return float((logits.argmax(1) == labels.cpu()).float().mean())
