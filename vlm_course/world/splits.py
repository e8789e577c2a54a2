"""Splits of ShapeWorld and the held-out colour-shape compositions.

Chapter 03 (datasets), used again in chapter 08 (zero-shot) for compositional generalisation.

=========  =========================================================================================
split      which colour-shape compositions its objects use
=========  =========================================================================================
train      only the allowed pairs (never a pair in ``cfg.heldout``), in images and in captions
val        like train (an in-distribution validation split), but an independent stream of scenes
test       the primary object (object 0) is a held-out pair with probability
           ``cfg.test_heldout_fraction`` (default 0.5), otherwise an allowed pair; the other objects
           use any of the pairs. So about half the test scenes show a novel composition.
heldout    the primary object is always a held-out pair; the others use any pair (a pure
           compositional-generalisation test set)
=========  =========================================================================================

Each split is its own deterministic stream of scenes: ``(seed, split, index)`` is hashed with the
split name, so train scene 5 and test scene 5 are unrelated draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WorldConfig

SPLITS: tuple[str, ...] = ("train", "val", "test", "heldout")
#: Splits whose images and captions must never contain a held-out composition.
CLOSED_SPLITS: tuple[str, ...] = ("train", "val")


def split_id(split: str) -> int:
    """Position of ``split`` in :data:`SPLITS` (used in the stable scene hash).

    Raises ``ValueError`` naming ``split`` and the known splits for any other value.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return SPLITS.index(split)


@dataclass(frozen=True)
class CompositionPools:
    """Composition ids (colour_id * S + shape_id) each kind of object slot is drawn from."""

    primary: np.ndarray  # object 0, before the held-out coin
    others: np.ndarray  # objects 1..M-1
    heldout: np.ndarray  # the held-out ids
    p_heldout: float  # probability that object 0 is replaced by a held-out pair


def composition_pools(cfg: WorldConfig, split: str) -> CompositionPools:
    """The pools for ``split`` (see the module table).

    Raises ``ValueError`` for an unknown ``split``, or ``"heldout"`` with an empty
    ``cfg.heldout``; ``TypeError`` when ``cfg`` is not a :class:`WorldConfig`.
    """
    if not isinstance(cfg, WorldConfig):
        raise TypeError(f"cfg must be a WorldConfig, got {type(cfg).__name__}")
    split_id(split)
    n = len(cfg.colours) * len(cfg.shapes)
    held = np.array(sorted(cfg.heldout_ids), dtype=np.int64)
    every = np.arange(n, dtype=np.int64)
    allowed = np.setdiff1d(every, held)
    if split in CLOSED_SPLITS:
        return CompositionPools(allowed, allowed, held, 0.0)
    if len(held) == 0:
        if split == "heldout":
            raise ValueError("split: 'heldout' needs WorldConfig.heldout to name at least one "
                             "(colour, shape) pair, got an empty heldout")
        return CompositionPools(every, every, held, 0.0)
    if split == "test":
        return CompositionPools(allowed, every, held, float(cfg.test_heldout_fraction))
    return CompositionPools(held, every, held, 1.0)


def is_heldout(cfg: WorldConfig, colour: str, shape: str) -> bool:
    """True when (colour, shape) is one of ``cfg.heldout``.

    Raises ``ValueError`` when ``colour`` / ``shape`` is not in the world's vocabulary.
    """
    if colour not in cfg.colours:
        raise ValueError(f"colour: expected one of {cfg.colours}, got {colour!r}")
    if shape not in cfg.shapes:
        raise ValueError(f"shape: expected one of {cfg.shapes}, got {shape!r}")
    return (colour, shape) in set(cfg.heldout)
