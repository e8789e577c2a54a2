"""Class-agnostic box proposals by grouping pixels: foreground map + connected regions.

Chapter 08 (zero-shot detection).  Zero-shot detectors in the survey split detection in two: a
*class-agnostic* step that says where objects might be, and a VLM that says what each region is by
comparing it with class-name texts.  ViLD (Gu et al. 2022) takes its regions from a proposal
network trained on base classes; before learned proposals, detectors used low-level grouping of
pixels (selective search, Uijlings et al. 2013).  This module is such a hand-written step.

Which and why: **connected regions of a foreground map**.  A ShapeWorld object is one connected
blob of colour on a background, and objects never touch (one per grid cell), so grouping the
pixels that differ from the background colour finds every object with a tight box and nothing
else — a few proposals per image instead of hundreds of sliding windows, each already the size of
an object.  It knows nothing about classes, so it cannot favour the classes seen in training: what
open-vocabulary AP measures is then the VLM's naming of regions.  Its limit is the same as
selective search's: it relies on low-level cues (here a plain background, as in the shipped
model's world); on textured backgrounds the foreground map fills with texture.

Steps (all batched torch, no learned parameters):

1. ``foreground_map``: background colour = per-image median of the border pixels; a pixel is
   foreground when its largest per-channel difference from it exceeds ``threshold``;
2. ``connected_regions``: 8-connected components by label propagation (each foreground pixel starts
   with its own id and repeatedly takes the smallest id in its 3x3 neighbourhood);
3. ``region_boxes``: the tight ``xyxy`` box of each region (exclusive right/bottom edges, as
   ShapeWorld's ground-truth boxes), regions smaller than ``min_area`` pixels dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["background_colour", "foreground_map", "connected_regions", "region_boxes",
           "propose_boxes"]


def _check_images(images) -> None:
    if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (B, C, H, W) tensor, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} "
                         f"{tuple(getattr(images, 'shape', ()))}")


def background_colour(images: torch.Tensor) -> torch.Tensor:
    """(B, C) per-channel median of each image's border pixels: its background colour."""
    _check_images(images)
    border = torch.cat([images[:, :, 0], images[:, :, -1], images[:, :, :, 0],
                        images[:, :, :, -1]], dim=2)               # (B, C, 2W + 2H)
    return border.median(dim=2).values


def foreground_map(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """(B, H, W) bool: pixels whose colour differs from the image's background colour.

    images: (B, C, H, W) float in [0, 1].  The background colour of each image is the per-channel
    median of its border pixels; ``threshold`` is compared with the largest absolute channel
    difference.  Raises ValueError for a non-(B, C, H, W) float tensor or a threshold outside
    (0, 1).
    """
    _check_images(images)
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    colour = background_colour(images)                             # (B, C)
    return (images - colour[:, :, None, None]).abs().amax(dim=1) > threshold


def connected_regions(mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) int64 region ids of the 8-connected components of a (B, H, W) bool ``mask``:
    0 outside the mask, ``1 .. n_b`` inside (numbered in order of their first pixel, row-major).

    Raises ValueError for a mask that is not (B, H, W) bool.
    """
    if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.ndim != 3:
        raise ValueError(f"mask must be a (B, H, W) bool tensor, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} "
                         f"{tuple(getattr(mask, 'shape', ()))}")
    B, H, W = mask.shape
    big = float(H * W + 1)
    ids = torch.arange(H * W, dtype=torch.float32).view(1, 1, H, W).expand(B, 1, H, W)
    lab = torch.where(mask[:, None], ids, torch.full_like(ids, big))   # (B, 1, H, W)
    while True:
        # smallest id in each 3x3 neighbourhood (min-pool = -max-pool of -x), kept on the mask
        low = torch.where(mask[:, None], -F.max_pool2d(-lab, 3, stride=1, padding=1), lab)
        if torch.equal(low, lab):
            break
        lab = low
    lab = lab[:, 0].long()                                         # (B, H, W) root pixel ids
    out = torch.zeros(B, H, W, dtype=torch.long)
    for b in range(B):
        roots = torch.unique(lab[b][mask[b]])                      # sorted = first-pixel order
        out[b][mask[b]] = torch.searchsorted(roots, lab[b][mask[b]]) + 1
    return out


def region_boxes(regions: torch.Tensor, min_area: int = 4) -> list[torch.Tensor]:
    """Tight boxes of the regions of (B, H, W) int64 ``regions`` (0 = none): B tensors (n_b, 4)
    float32 ``xyxy`` in pixels, exclusive right/bottom edges (a single pixel at (x, y) is
    ``[x, y, x + 1, y + 1]``); regions with fewer than ``min_area`` pixels are dropped.
    """
    if not torch.is_tensor(regions) or regions.ndim != 3 or regions.is_floating_point():
        raise ValueError(f"regions must be a (B, H, W) integer tensor, got "
                         f"{tuple(getattr(regions, 'shape', ()))}")
    B, H, W = regions.shape
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    out = []
    for b in range(B):
        n = int(regions[b].max())
        boxes = []
        for r in range(1, n + 1):
            sel = regions[b] == r
            if int(sel.sum()) < min_area:
                continue
            x, y = xs[sel], ys[sel]
            boxes.append([int(x.min()), int(y.min()), int(x.max()) + 1, int(y.max()) + 1])
        out.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    return out


def propose_boxes(images: torch.Tensor, threshold: float = 0.25,
                  min_area: int = 4) -> list[torch.Tensor]:
    """Class-agnostic proposals for (B, C, H, W) ``images``: B tensors (n_b, 4) float32 ``xyxy``
    boxes (the three steps of the module docstring)."""
    return region_boxes(connected_regions(foreground_map(images, threshold)), min_area)
