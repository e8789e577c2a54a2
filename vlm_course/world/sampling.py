"""Deterministic scene sampling from ``(seed, split, index)``: a counter-based random generator.

Chapter 03 (datasets). Nothing is stored on disk: scene ``index`` of split ``split`` in a world with
seed ``seed`` is always the same scene, in any process and on any machine. Each scene gets a 64-bit
key from a stable hash of the triple (SplitMix64 finalisers, not Python's salted ``hash()``), and
its k-th random number is a hash of (key, k). This is equivalent to giving every scene its own
generator seeded from the hash, but vectorised over the batch with NumPy ``uint64`` arithmetic.

The draws are laid out at fixed offsets (number of objects, cell permutation, background, then a
fixed block per object slot), so changing one attribute rule does not reshuffle the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import WorldConfig
from .splits import SPLITS, composition_pools, split_id

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED69)

# Draw layout (offsets into a scene's stream of uniforms).
_N_OBJ, _CELLS, _BG = 0, 1, 10  # 1 draw, 9 draws, 6 draws
_OBJ0, _PER_OBJ = 16, 6  # per slot: composition, size, jitter x, jitter y, held-out coin, spare
N_SCENE_DRAWS = _OBJ0 + _PER_OBJ * 9
CAPTION_SALT = 0xC0FFEE
#: Object centres are multiples of 1 / SUBPIXEL pixel.
SUBPIXEL = 4


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a ``uint64`` array (wrapping arithmetic): a stable 64-bit hash."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def scene_keys(seed: int, split: str, indices: np.ndarray, salt: int = 0) -> np.ndarray:
    """64-bit key per scene, (B,) uint64, from the stable hash of (seed, split, index, salt)."""
    base = mix64(np.array([seed], dtype=np.uint64))
    base = mix64(base ^ np.uint64(split_id(split) + 1))
    base = mix64(base ^ np.uint64(salt))
    return mix64(base ^ np.asarray(indices, dtype=np.uint64))


def uniforms(keys: np.ndarray, n: int) -> np.ndarray:
    """(B, n) float64 in [0, 1): the first ``n`` random numbers of each scene's stream."""
    with np.errstate(over="ignore"):
        counters = np.arange(1, n + 1, dtype=np.uint64) * _STEP
        bits = mix64(keys[:, None] + counters[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def check_indices(indices) -> np.ndarray:
    """Validate scene indices (a sequence of ints or a range) and return them as (B,) int64."""
    if isinstance(indices, (int, np.integer)):
        raise TypeError(f"indices: expected a sequence of ints or a range, got the int {indices!r}")
    arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"indices: expected a 1-D sequence of ints, got dtype {arr.dtype}, "
                        f"shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= 2**48):
        raise ValueError("indices: expected ints in [0, 2**48), "
                         f"got min {arr.min()}, max {arr.max()}")
    return arr.astype(np.int64)


@dataclass
class SceneSpec:
    """Attributes of B scenes with up to M = cfg.max_objects object slots (NumPy arrays).

    Slots ``k < n_objects[b]`` are real objects; the others hold -1 (ids) or 0 (floats).
    ``shape``, ``colour``, ``size``, ``cell``: (B, M) int64 ids into cfg.shapes / cfg.colours /
    cfg.sizes / cfg.positions. ``cx``, ``cy``, ``radius``: (B, M) float32 pixels (x right, y down,
    pixel centres at integer + 0.5; centres are multiples of 1/SUBPIXEL). ``textured``: (B,) bool.
    ``texture``: (B, 6) float64 uniforms for the background pattern. ``keys``: (B,) uint64 scene
    keys. ``held``: (B, M) bool, the object is a held-out composition.
    """

    split: str
    indices: np.ndarray
    keys: np.ndarray
    n_objects: np.ndarray
    shape: np.ndarray
    colour: np.ndarray
    size: np.ndarray
    cell: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    textured: np.ndarray
    texture: np.ndarray
    held: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """(B, M) bool, True for the real objects."""
        return self.shape >= 0


def _pick(pool: np.ndarray, u: np.ndarray) -> np.ndarray:
    return pool[np.minimum((u * len(pool)).astype(np.int64), len(pool) - 1)]


def sample_scenes(cfg: WorldConfig, split: str, indices: Sequence[int]) -> SceneSpec:
    """Sample B scenes of ``split`` (see :data:`SPLITS`); same inputs, same scenes, everywhere."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    idx = check_indices(indices)
    B, M = len(idx), cfg.max_objects
    keys = scene_keys(cfg.seed, split, idx)
    u = uniforms(keys, N_SCENE_DRAWS)

    span = cfg.max_objects - cfg.min_objects + 1
    n_obj = cfg.min_objects + np.minimum((u[:, _N_OBJ] * span).astype(np.int64), span - 1)
    cells = np.argsort(u[:, _CELLS:_CELLS + 9], axis=1, kind="stable")[:, :M]
    valid = np.arange(M)[None, :] < n_obj[:, None]

    pools = composition_pools(cfg, split)
    S = len(cfg.shapes)
    comp = np.empty((B, M), dtype=np.int64)
    for k in range(M):
        base = _OBJ0 + _PER_OBJ * k
        comp[:, k] = _pick(pools.primary if k == 0 else pools.others, u[:, base])
    if pools.p_heldout > 0.0:
        coin = u[:, _OBJ0 + 4] < pools.p_heldout
        comp[coin, 0] = _pick(pools.heldout, u[coin, _OBJ0])
    # 0 = small, 1 = large, each with probability 1/2.
    size = (u[:, _OBJ0 + 1:_OBJ0 + _PER_OBJ * M:_PER_OBJ] >= 0.5).astype(np.int64)

    cell_side = cfg.canvas / 3.0
    scale = np.asarray(cfg.size_scale)[size]
    radius = scale * cell_side
    jitter = np.maximum(0.0, (0.5 - scale) * cell_side - 1.0) * 0.8
    jx = (2.0 * u[:, _OBJ0 + 2:_OBJ0 + _PER_OBJ * M:_PER_OBJ] - 1.0) * jitter
    jy = (2.0 * u[:, _OBJ0 + 3:_OBJ0 + _PER_OBJ * M:_PER_OBJ] - 1.0) * jitter
    row, col = cells // 3, cells % 3
    # Centres are quantised to 1/SUBPIXEL pixel, so the renderer can use pre-drawn sprites.
    cx = np.round(((col + 0.5) * cell_side + jx) * SUBPIXEL) / SUBPIXEL
    cy = np.round(((row + 0.5) * cell_side + jy) * SUBPIXEL) / SUBPIXEL

    if cfg.background == "mixed":
        textured = u[:, _BG] < 0.5
    else:
        textured = np.full(B, cfg.background == "textured")

    held_set = np.zeros(len(cfg.colours) * S, dtype=bool)
    held_set[list(cfg.heldout_ids)] = True
    inv = ~valid
    shape, colour = comp % S, comp // S
    held = held_set[comp] & valid
    for arr in (shape, colour, size, cells):
        arr[inv] = -1
    for arr in (cx, cy, radius):
        arr[inv] = 0.0
    return SceneSpec(
        split=split, indices=idx, keys=keys, n_objects=n_obj, shape=shape, colour=colour,
        size=size, cell=cells.astype(np.int64), cx=cx.astype(np.float32), cy=cy.astype(np.float32),
        radius=radius.astype(np.float32), textured=textured, texture=u[:, _BG:_BG + 6], held=held,
    )
