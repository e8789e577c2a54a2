"""Image sizes given as one int (square) or an ``(H, W)`` pair, as image-tower configs take them.

Chapter 02 (network architectures).  A config stores what the user wrote (an int, or a tuple; a
list read back from JSON becomes a tuple); towers read the size through :func:`as_hw`.
"""

from __future__ import annotations

__all__ = ["as_hw", "normalise_size"]


def normalise_size(value, name: str = "image_size") -> int | tuple[int, int]:
    """``value`` as an ``int`` or an ``(H, W)`` tuple of ints (a JSON list becomes a tuple).

    Raises TypeError when ``value`` is neither, ValueError when a side is not positive.
    """
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        sides = (value,)
    elif isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        sides = value
    else:
        raise TypeError(f"{name} must be an int or an (H, W) pair of ints, got {value!r}")
    if min(sides) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return value


def as_hw(value, name: str = "image_size") -> tuple[int, int]:
    """``(H, W)`` of an int (square) or a pair; errors as in :func:`normalise_size`."""
    value = normalise_size(value, name)
    return (value, value) if isinstance(value, int) else value
