"""Find repeated images among ShapeWorld scenes (chapter 03; used by evaluation set-ups).

Two scenes show the same image when their rendered (3, H, W) float32 tensors are bit-identical.
ShapeWorld places each scene's primary object by a permutation of the scene index
(``sampling.primary_places``), so scenes of one split whose indices are closer than
``primary_places(cfg, split)[0].min()`` do not repeat an image; a world too small for that
(e.g. canvas 32: 961 places for a large object) can, and these functions count how often.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch


def image_digests(images: torch.Tensor) -> list[str]:
    """One SHA-256 hex digest per image of ``images`` (B, C, H, W) float: equal digests mean
    bit-identical images. Raises ValueError when ``images`` is not 4-D."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected a (B, C, H, W) tensor, got {shape}")
    flat = images.detach().to("cpu", torch.float32).contiguous()
    return [hashlib.sha256(x.numpy().tobytes()).hexdigest() for x in flat]


def duplicate_groups(images: torch.Tensor) -> list[list[int]]:
    """Groups (of 2 or more batch positions, ascending) of bit-identical images in ``images``
    (B, C, H, W); an empty list when every image differs. Raises as :func:`image_digests`."""
    seen: dict[str, list[int]] = {}
    for i, digest in enumerate(image_digests(images)):
        seen.setdefault(digest, []).append(i)
    return [group for group in seen.values() if len(group) > 1]


def count_distinct_images(world, split: str, indices: Sequence[int],
                          chunk: int = 1024) -> int:
    """How many distinct images scenes ``indices`` of ``split`` show (``world`` a ShapeWorld),
    rendered ``chunk`` scenes at a time. Raises ValueError for an unknown split, bad indices or a
    chunk < 1."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected an int >= 1, got {chunk!r}")
    indices = list(indices)
    digests: set[str] = set()
    for start in range(0, len(indices), chunk):
        digests.update(image_digests(world.images(split, indices[start:start + chunk])))
    return len(digests)
