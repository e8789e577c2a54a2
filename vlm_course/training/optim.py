"""AdamW with weight-decay groups and the warmup + cosine learning-rate schedule (chapter 04).

CLIP (Radford et al., 2021) trains with AdamW, decoupled weight decay applied to weight matrices
only, and a cosine schedule after a linear warmup.  Parameters that are *not* decayed: every 0-d/1-d
tensor (LayerNorm/BatchNorm scales and shifts, biases, the learnable ``logit_scale``), and embedding
tables (token, position and class embeddings), which follow open_clip's convention.
"""

from __future__ import annotations

import math

import torch


def _check_number(name: str, value: object, low: float, *, low_inclusive: bool = True,
                  high: float = math.inf) -> float:
    """A finite real number in [low, high] (or (low, high] without ``low_inclusive``)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value >= low if low_inclusive else value > low) and value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}"
                                                             if high < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)

NO_DECAY_NAME_PARTS = ("embedding", "embed", "logit_scale", "class_token", "cls_token", "norm",
                       "ln_", "bias")


def decays(name: str, param: torch.Tensor) -> bool:
    """True when the parameter called ``name`` should receive weight decay (a weight
    matrix/kernel).  Raises nothing: any name and tensor are accepted."""
    if param.ndim < 2:
        return False
    lowered = name.lower()
    return not any(part in lowered for part in NO_DECAY_NAME_PARTS)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Split ``model``'s trainable parameters into a decayed and a non-decayed AdamW group.

    Returns ``[{"params": [...], "weight_decay": weight_decay, "names": [...]}, {... 0.0 ...}]``;
    the ``names`` lists are for inspection (a notebook can print which tensors are decayed).
    Raises ``TypeError`` when ``model`` is not an ``nn.Module`` and ``ValueError`` when
    ``weight_decay`` is not a finite number >= 0.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_number("weight_decay", weight_decay, 0.0)
    decay, no_decay = ([], []), ([], [])
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        target = decay if decays(name, param) else no_decay
        target[0].append(param)
        target[1].append(name)
    return [{"params": decay[0], "weight_decay": weight_decay, "names": decay[1]},
            {"params": no_decay[0], "weight_decay": 0.0, "names": no_decay[1]}]


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.1,
                    betas: tuple[float, float] = (0.9, 0.98),
                    eps: float = 1e-6) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (CLIP's betas (0.9, 0.98) and eps 1e-6 by default).

    Raises ``ValueError`` when ``lr`` or ``eps`` is not a finite number > 0, ``betas`` is not two
    numbers in [0, 1), or ``weight_decay`` is invalid (see :func:`param_groups`); ``TypeError``
    when ``model`` is not an ``nn.Module``.
    """
    _check_number("lr", lr, 0.0, low_inclusive=False)
    _check_number("eps", eps, 0.0, low_inclusive=False)
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1
                   for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    groups = [{k: v for k, v in g.items() if k != "names"}
              for g in param_groups(model, weight_decay)]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int,
          min_ratio: float = 0.0) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warmup then cosine decay.

    ``lr = base_lr * (step + 1) / warmup_steps`` during warmup, then a half cosine from ``base_lr``
    down to ``min_ratio * base_lr`` at ``total_steps``.  A pure function of the step, so resuming
    needs no scheduler state.

    Raises ``ValueError`` naming the argument when ``step`` is not an int >= 0, ``total_steps``
    not an int > 0, ``warmup_steps`` not an int >= 0 (it may outlast the run), ``base_lr`` not a
    finite number >= 0 or ``min_ratio`` not in [0, 1].
    """
    for name, value, low in (("step", step, 0), ("total_steps", total_steps, 1),
                             ("warmup_steps", warmup_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    _check_number("base_lr", base_lr, 0.0)
    _check_number("min_ratio", min_ratio, 0.0, high=1.0)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group.

    Raises ``ValueError`` when ``lr`` is not a finite number >= 0.
    """
    _check_number("lr", lr, 0.0)
    for group in optimizer.param_groups:
        group["lr"] = lr
