"""Argument checks shared by the evaluation functions (chapter 08): one message style everywhere.

Each check raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong shape, empty,
non-finite, out of range) with a message that names the argument, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_embeddings(name: str, x: object, dims: str = "(N, D)") -> torch.Tensor:
    """``x`` must be a finite, non-empty 2-D float tensor; returns it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {dims}, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D {dims}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be non-empty {dims}, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return x


def check_images(name: str, images: object) -> torch.Tensor:
    """``images`` must be a non-empty (N, 3, H, W) float tensor."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, 3, H, W), got "
                        f"{type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty (N, 3, H, W) batch, got shape "
                         f"{tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype}")
    return images


def check_positive_int(name: str, value: object, low: int = 1) -> int:
    """An int (not bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def check_strings(name: str, values: object) -> list[str]:
    """A non-empty list/tuple of strings (a lone ``str`` is refused: it would be split into
    letters)."""
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of strings, got {values!r}")
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must hold only strings, got {bad[:3]!r}")
    return list(values)


def check_ks(ks: object) -> list[int]:
    """Retrieval cut-offs: a non-empty sequence of ints >= 1."""
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of ints >= 1, got {ks!r}")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)!r}")
    return list(ks)
