"""Batched, vectorised rendering of ShapeWorld scenes with torch signed distance functions.

Chapter 03 (datasets). Rendering has two stages:

1. :func:`sprite_bank` evaluates every shape's signed distance function (``world/shapes.py``) on a
   P x P pixel grid, for both sizes and every sub-pixel offset of the centre (centres are multiples
   of 1/SUBPIXEL = 1/8 pixel), and turns it into anti-aliased coverage in [0, 1]. This is done
   once per configuration: about two thousand small sprites.
2. :func:`render` gathers one sprite per object, multiplies it by the object's colour and adds all
   of them into the (B, 3, H, W) canvas with a single ``index_add_``; no Python loop over scenes.

Objects sit in different grid cells and every pixel an object touches (coverage > 0, its
anti-aliased rim included) has its centre inside the object's cell (``sampling.centre_grid``), so
objects never share a pixel and each one is fully visible.

What a mask is, exactly: pixel (i, j) belongs to object k's instance mask when the object's
coverage of that pixel is at least 0.5, which is the same as "the pixel's centre lies inside or on
the shape's outline" (signed distance <= 0; coverage = clamp(0.5 - distance, 0, 1)). On a plain
background the image there is at least half the object's colour. The rim pixels with
0 < coverage < 0.5 are tinted by the object but are background in the masks: the mask is the
object's shape sampled at pixel centres, not every pixel it colours.

Outputs (all torch, CPU):

* ``images``: (B, 3, H, W) float32 in [0, 1], RGB, channel-first.
* ``instance_masks``: (B, H, W) int64; 0 = background, k = object k - 1 (object slot order).
  A pixel belongs to an object when the object covers at least half of it (see above).
* ``semantic_masks``: (B, H, W) int64; 0 = background, 1 + shape id.
* ``boxes``: (B, M, 4) float32 xyxy in pixels, the tight box of the instance mask with exclusive
  right/bottom edges (a mask occupying columns 3..7 gives x0 = 3, x1 = 8); zeros for empty slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import COLOUR_LIBRARY, WorldConfig
from .sampling import SUBPIXEL, SceneSpec
from .shapes import SDF
from .shapes import coverage as pixel_coverage

Tensor = torch.Tensor


@dataclass
class Rendered:
    """What :func:`render` returns (see the module docstring for shapes and meanings)."""

    images: Tensor
    instance_masks: Tensor | None
    semantic_masks: Tensor | None
    boxes: Tensor | None


@dataclass(frozen=True)
class SpriteBank:
    """Pre-drawn objects. ``coverage``: (S * 2 * Q * Q, P, P) float32 in [0, 1], indexed by
    ``((shape * 2 + size) * Q + fy) * Q + fx`` for sub-pixel offsets (fx, fy) in 0..Q-1
    (Q = SUBPIXEL = 8).
    The object's centre sits at pixel coordinate (C + fx / Q, C + fy / Q) of the patch.
    ``box``: (K, 4) int64 tight xyxy box of ``coverage >= 0.5`` in patch pixels (exclusive ends)."""

    coverage: Tensor
    inside: Tensor
    box: Tensor
    P: int
    C: int


_SPRITE_CACHE: dict[tuple, SpriteBank] = {}


def sprite_bank(cfg: WorldConfig) -> SpriteBank:
    """Draw (and cache) every shape x size x sub-pixel offset with the signed distance functions."""
    key = (cfg.canvas, cfg.shapes, cfg.size_scale)
    if key in _SPRITE_CACHE:
        return _SPRITE_CACHE[key]
    cell = cfg.canvas / 3.0
    r_max = max(cfg.size_scale) * cell
    C = math.ceil(r_max + 1.0)  # pixels left of / above the centre's pixel
    P = C + math.ceil(r_max + 2.0)  # enough on the right / below for any sub-pixel offset
    Q = SUBPIXEL
    frac = torch.arange(Q, dtype=torch.float64) / Q
    # Pixel-centre offsets from the object's centre, in pixels: (Q, P) for each sub-pixel shift.
    offs = torch.arange(P, dtype=torch.float64)[None, :] + 0.5 - C - frac[:, None]
    x = offs[None, :, None, :].expand(Q, Q, P, P)  # varies with fx and the column
    y = offs[:, None, :, None].expand(Q, Q, P, P)  # varies with fy and the row
    sprites = []
    for name in cfg.shapes:
        for scale in cfg.size_scale:
            r = scale * cell
            d_px = SDF[name](x / r, y / r) * r  # (Q, Q, P, P) signed distance in pixels
            cov = pixel_coverage(d_px)  # one-pixel anti-aliasing ramp, shared with shapes.py
            # Nothing outside the shape's (r + 0.5)-box: keeps every object inside its cell even
            # where the max-of-half-planes distance underestimates the true one near a corner.
            cov = cov * ((x.abs() <= r + 0.5) & (y.abs() <= r + 0.5))
            sprites.append(cov)
    coverage = torch.stack(sprites).reshape(-1, P, P).float().contiguous()
    inside = coverage >= 0.5
    rows, cols = inside.any(2), inside.any(1)  # (K, P)
    idx = torch.arange(P)
    big = P + 1
    box = torch.stack([
        torch.where(cols, idx, big).amin(1), torch.where(rows, idx, big).amin(1),
        torch.where(cols, idx + 1, -1).amax(1), torch.where(rows, idx + 1, -1).amax(1),
    ], 1)
    bank = SpriteBank(coverage, inside, box, P, C)
    _SPRITE_CACHE[key] = bank
    return bank


_TEXTURE_CACHE: dict[int, Tensor] = {}
N_TEXTURES = 16


def texture_bank(canvas: int) -> Tensor:
    """(16, H, W) float32 patterns in [0, 1]: stripes at 8 angles and 8 blob fields (fixed
    formulas)."""
    if canvas not in _TEXTURE_CACHE:
        t = (torch.arange(canvas, dtype=torch.float32) + 0.5) / canvas
        y, x = t[:, None], t[None, :]
        bank = []
        for k in range(8):
            a = k * math.pi / 8
            freq = 4.0 + 2.0 * (k % 3)
            bank.append(0.5 + 0.5 * torch.sin(
                2 * math.pi * freq * (x * math.cos(a) + y * math.sin(a))))
        for k in range(8):
            fx, fy = 2.0 + k % 4, 2.0 + (k * 3) % 5
            blob = torch.sin(2 * math.pi * fx * x + k) * torch.cos(2 * math.pi * fy * y + 0.5 * k)
            bank.append(0.5 + 0.5 * blob)
        _TEXTURE_CACHE[canvas] = torch.stack(bank)
    return _TEXTURE_CACHE[canvas]


def background(cfg: WorldConfig, spec: SceneSpec) -> Tensor | None:
    """(B, 3, H, W) background, or None when every scene is plain black (the fast path).

    A textured background is a dark tint (each channel in [0.05, 0.3]) modulated by one of the
    :func:`texture_bank` patterns, so that every object colour stays clearly visible on it.
    """
    if not spec.textured.any():
        return None
    H = cfg.canvas
    u = torch.from_numpy(spec.texture).float()
    bank = texture_bank(H)
    pattern = bank[(u[:, 0] * N_TEXTURES).long().clamp_(max=N_TEXTURES - 1)]  # (B, H, W)
    tint = 0.05 + 0.25 * u[:, 1:4]  # (B, 3)
    bg = tint[:, :, None, None] * (0.4 + 0.6 * pattern[:, None])  # (B, 3, H, W)
    plain = torch.from_numpy(~spec.textured)
    bg[plain] = 0.0
    return bg


def render(cfg: WorldConfig, spec: SceneSpec, with_masks: bool = True) -> Rendered:
    """Render B scenes; ``with_masks=False`` skips masks and boxes (the fast path for
    pre-training)."""
    B, M = spec.shape.shape
    H = W = cfg.canvas
    bank = sprite_bank(cfg)
    P, C, Q = bank.P, bank.C, SUBPIXEL
    b_idx, slot = np.nonzero(spec.valid)  # (n,) objects in scene-major, slot order
    n = len(b_idx)
    qx = np.round(spec.cx[b_idx, slot] * Q).astype(np.int64)  # centre in 1/Q pixels
    qy = np.round(spec.cy[b_idx, slot] * Q).astype(np.int64)
    shape = spec.shape[b_idx, slot]
    sprite = ((shape * 2 + spec.size[b_idx, slot]) * Q + qy % Q) * Q + qx % Q
    sprite_t = torch.from_numpy(sprite)
    cov = bank.coverage[sprite_t]  # (n, P, P)
    ox = torch.from_numpy(qx // Q - C)[:, None]  # (n, 1) patch origin, may stick out of the canvas
    oy = torch.from_numpy(qy // Q - C)[:, None]
    steps = torch.arange(P)
    # Sprite pixels outside the canvas have zero coverage (objects stay in their cell), so clamping
    # their coordinates only adds zeros to border pixels.
    rows = (oy + steps).clamp_(0, H - 1)  # (n, P)
    cols = (ox + steps).clamp_(0, W - 1)
    b_t = torch.from_numpy(b_idx)[:, None]  # (n, 1)
    # Flat index of every sprite pixel in a (B, H, W) map: (n, P * P).
    pix = (b_t[:, :, None] * (H * W) + rows[:, :, None] * W + cols[:, None, :]).view(n, P * P)

    rgb = torch.tensor([COLOUR_LIBRARY[c] for c in cfg.colours], dtype=torch.float32)
    obj_rgb = rgb[torch.from_numpy(spec.colour[b_idx, slot])]  # (n, 3)
    # The same pixel in channel c of the (B, 3, H, W) image: pix + (2 * b + c) * H * W.
    chan = (2 * b_t + torch.arange(3)[None, :]) * (H * W)  # (n, 3)
    flat3 = (pix[:, None, :] + chan[:, :, None]).view(-1)  # (n * 3 * P * P,)
    contrib = cov.view(n, 1, P * P) * obj_rgb[:, :, None]  # (n, 3, P * P)
    images = torch.zeros(B, 3, H, W)
    images.view(-1).index_add_(0, flat3, contrib.view(-1))

    bg = background(cfg, spec)
    if bg is not None:
        total = torch.zeros(B, 1, H, W)  # summed coverage (at most 1: objects do not overlap)
        total.view(-1).index_add_(0, pix.view(-1), cov.view(-1))
        images += bg.mul_(1.0 - total.clamp_(max=1.0))
    if not with_masks:
        return Rendered(images, None, None, None)

    inside = bank.inside[sprite_t].view(-1)  # (n * P * P,) bool
    pix_in = pix.view(-1)[inside]
    inst = torch.zeros(B * H * W, dtype=torch.long)
    inst.index_put_((pix_in,),
                    torch.from_numpy(slot + 1)[:, None].expand(n, P * P).reshape(-1)[inside])
    # The semantic mask follows from the instance mask: slot k + 1 of scene b -> 1 + its shape id.
    lut = torch.zeros(B, M + 1, dtype=torch.long)
    lut[torch.from_numpy(b_idx), torch.from_numpy(slot + 1)] = torch.from_numpy(shape + 1)
    semantic = lut.gather(1, inst.view(B, H * W))

    boxes = torch.zeros(B, M, 4)
    offset = torch.cat([ox, oy, ox, oy], 1)  # (n, 4)
    boxes[torch.from_numpy(b_idx), torch.from_numpy(slot)] = (bank.box[sprite_t] + offset).float()
    return Rendered(images, inst.view(B, H, W), semantic.view(B, H, W), boxes)
