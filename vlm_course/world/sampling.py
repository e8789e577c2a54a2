"""Deterministic scene sampling from ``(seed, split, index)``: a counter-based random generator.

Chapter 03 (datasets). Nothing is stored on disk: scene ``index`` of split ``split`` in a world with
seed ``seed`` is always the same scene, in any process and on any machine. Each scene gets a 64-bit
key from a stable hash of the triple (SplitMix64 finalisers, not Python's salted ``hash()``), and
its k-th random number is a hash of (key, k). This is equivalent to giving every scene its own
generator seeded from the hash, but vectorised over the batch with NumPy ``uint64`` arithmetic.

The draws are laid out at fixed offsets (number of objects, cell permutation, background, then a
fixed block per object slot), so changing one attribute rule does not reshuffle the others.

Places. An object's centre is a multiple of 1/SUBPIXEL pixel chosen among every place that keeps
all the pixels it touches inside its grid cell (:func:`centre_grid`), so objects never overlap.
The other objects' places are uniform draws; the primary object's place is a permutation of the
scene index (:func:`primary_places`), so scenes whose indices are closer than
``primary_places(cfg, split)[0].min()`` never repeat an image (``world.duplicates`` counts them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import WorldConfig
from .splits import SPLITS, composition_pools, split_id

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED69)

# Draw layout (offsets into a scene's stream of uniforms).
_N_OBJ, _CELLS, _BG = 0, 1, 10  # 1 draw, 9 draws, 6 draws
_OBJ0, _PER_OBJ = 16, 6  # per slot: composition, size, centre x, centre y, held-out coin, spare
N_SCENE_DRAWS = _OBJ0 + _PER_OBJ * 9
CAPTION_SALT = 0xC0FFEE
PLACE_SALT = 0x91ACE
#: Object centres are multiples of 1 / SUBPIXEL pixel.
SUBPIXEL = 8
#: An object moves up to JITTER_SCALE * (cell / 2 - radius - 1) pixels from its cell's centre...
JITTER_SCALE = 0.8
#: ...but at least this far, where its cell leaves the room (see :func:`centre_grid`).
MIN_JITTER_PX = 1.0


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


def centre_grid(cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """Where an object's centre may sit: ``(first, count)``, (2, 3) and (2,) int64 arrays.

    For size ``z`` (0 small, 1 large) in grid column (or row) ``g``, the allowed centre coordinates
    are ``(first[z, g] + j) / SUBPIXEL`` for ``j`` in ``0 .. count[z] - 1``: the multiples of
    1/SUBPIXEL pixel

    * that keep every pixel the object touches inside its cell. An object of radius r touches
      exactly the pixels whose centres lie within r + 0.5 of its centre on both axes
      (``render.sprite_bank`` clips the anti-aliasing ramp there), and a pixel belongs to the cell
      that contains its centre; so objects in different cells never share a pixel and never leave
      the canvas;
    * and lie within ``JITTER_SCALE * (cell / 2 - r - 1)`` pixels of the cell's centre, but at least
      ``MIN_JITTER_PX`` (one pixel) where the first rule leaves that much room: small objects move
      as far as they always did, large ones (which used to sit still at canvas 48) move too.

    Where a cell allows more places than another (cell borders fall between pixels when the canvas
    is not a multiple of 3), the middle ``count[z]`` are used, so every cell offers the same number
    and cells stay equally likely. ``count >= 1`` always (WorldConfig keeps
    ``large <= 0.5 - 1.5 / canvas``, which leaves the cell centre allowed).
    """
    first, count = _centre_grid(cfg.canvas, cfg.size_scale)
    return first.copy(), count.copy()


@lru_cache(maxsize=64)
def _centre_grid(canvas: int, size_scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    cell = canvas / 3.0
    Q = SUBPIXEL
    k0 = np.zeros((2, 3), dtype=np.int64)
    n = np.zeros((2, 3), dtype=np.int64)
    for z, scale in enumerate(size_scale):
        reach = scale * cell + 0.5  # farthest pixel centre the object touches, per axis
        for g in range(3):
            lo, hi = g * cell, (g + 1) * cell
            below = math.ceil(lo - 0.5) - 0.5  # the last pixel centre before the cell
            after = math.ceil(hi - 0.5) + 0.5  # the first pixel centre at or after its end
            # strictly between: below + reach < k / Q < after - reach (with a float guard)
            lo_k = math.floor((below + reach) * Q + 1e-6) + 1
            hi_k = math.ceil((after - reach) * Q - 1e-6) - 1
            # and within the jitter window around the cell's centre
            centre = (g + 0.5) * cell
            half = max(JITTER_SCALE * (cell / 2 - scale * cell - 1.0), MIN_JITTER_PX)
            lo_k = max(lo_k, math.ceil((centre - half) * Q - 1e-6))
            hi_k = min(hi_k, math.floor((centre + half) * Q + 1e-6))
            k0[z, g], n[z, g] = lo_k, hi_k - lo_k + 1
    count = n.min(1)
    if (count < 1).any():  # unreachable for a validated WorldConfig; kept as a guard
        raise ValueError(f"cfg: size_scale={size_scale} leaves no room for an object at "
                         f"canvas={canvas}")
    return k0 + (n - count[:, None]) // 2, count


def primary_places(cfg: WorldConfig, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How scene ``i``'s primary object (object 0) gets its place: ``(places, a, b)``, (2,) int64.

    A place is a cell and a centre in it (:func:`centre_grid`): a size-z object has
    ``places[z] = (3 * count[z]) ** 2`` of them, numbered ``t = ty * X + tx`` with X = 3 * count[z]
    places per axis (column-major inside: tx = col * count[z] + j). Scene ``i`` puts its primary
    object of size z at place ``t = (a[z] * i + b[z]) mod places[z]``, with ``a[z]`` coprime to
    ``places[z]`` and (a, b) drawn from the hash of (seed, split): a permutation of the places
    that repeats only every ``places[z]`` indices. Hence two scenes of a split whose indices
    differ by less than ``places.min()`` never have primary objects of the same size at the same
    place, so their images differ (a single-object image is its primary object; a multi-object
    one could repeat another only if two objects swapped roles exactly). ``places.min()`` is the
    world's guarantee: 2025 at canvas 48 and 64 (default sizes), only 225 at
    canvas 32, where a few hundred consecutive scenes may already repeat an image.
    """
    return tuple(x.copy() for x in _places(cfg.canvas, cfg.size_scale, cfg.seed, split))


@lru_cache(maxsize=64)
def _places(canvas, size_scale, seed, split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = _centre_grid(canvas, size_scale)[1]
    places = (3 * count) ** 2
    h = uniforms(scene_keys(seed, split, np.arange(2), salt=PLACE_SALT), 2)  # (2, 2)
    a = np.ones(2, dtype=np.int64)
    b = np.zeros(2, dtype=np.int64)
    for z in range(2):
        T = int(places[z])
        if T > 1:
            step = 1 + int(h[z, 0] * (T - 1))  # in [1, T - 1]
            while math.gcd(step, T) != 1:
                step += 1
            a[z], b[z] = step, int(h[z, 1] * T)
    return places.astype(np.int64), a, b


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
    valid = np.arange(M)[None, :] < n_obj[:, None]
    # 0 = small, 1 = large, each with probability 1/2.
    size = (u[:, _OBJ0 + 1:_OBJ0 + _PER_OBJ * M:_PER_OBJ] >= 0.5).astype(np.int64)

    first, count = _centre_grid(cfg.canvas, cfg.size_scale)  # (2, 3), (2,): allowed centres
    # The primary object's place (cell and centre) comes from the index (see primary_places).
    rows = np.arange(B)
    z0 = size[:, 0]
    places, a, b = _places(cfg.canvas, cfg.size_scale, cfg.seed, split)
    t = (a[z0] * (idx % places[z0]) + b[z0]) % places[z0]  # (B,) place id of object 0
    X = 3 * count[z0]  # (B,) places per axis
    col0, kx0 = np.divmod(t % X, count[z0])
    row0, ky0 = np.divmod(t // X, count[z0])
    kx0, ky0 = first[z0, col0] + kx0, first[z0, row0] + ky0
    draw = u[:, _CELLS:_CELLS + 9].copy()
    draw[rows, 3 * row0 + col0] = -1.0  # the primary's cell sorts first; the others stay random
    cells = np.argsort(draw, axis=1, kind="stable")[:, :M]

    pools = composition_pools(cfg, split)
    S = len(cfg.shapes)
    comp = np.empty((B, M), dtype=np.int64)
    for k in range(M):
        base = _OBJ0 + _PER_OBJ * k
        comp[:, k] = _pick(pools.primary if k == 0 else pools.others, u[:, base])
    if pools.p_heldout > 0.0:
        coin = u[:, _OBJ0 + 4] < pools.p_heldout
        comp[coin, 0] = _pick(pools.heldout, u[coin, _OBJ0])

    row, col = cells // 3, cells % 3
    ux = u[:, _OBJ0 + 2:_OBJ0 + _PER_OBJ * M:_PER_OBJ]
    uy = u[:, _OBJ0 + 3:_OBJ0 + _PER_OBJ * M:_PER_OBJ]
    # Objects 1.. : uniform over the allowed centres k / SUBPIXEL of their size and cell.
    kx = first[size, col] + np.minimum((ux * count[size]).astype(np.int64), count[size] - 1)
    ky = first[size, row] + np.minimum((uy * count[size]).astype(np.int64), count[size] - 1)
    kx[:, 0], ky[:, 0] = kx0, ky0
    cx, cy = kx / SUBPIXEL, ky / SUBPIXEL  # exact in float32
    radius = np.asarray(cfg.size_scale)[size] * (cfg.canvas / 3.0)

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
