"""Hand-crafted image features: histograms of oriented gradients (HOG).

Chapter 01 (the paradigms of visual recognition): before deep networks, recognition was a
hand-designed feature followed by a trained linear classifier — SIFT (Lowe 2004), HOG (Dalal and
Triggs 2005).  :func:`hog_features` computes HOG with scikit-image's ``skimage.feature.hog`` on the
grey-level image: gradient orientations binned in small cells, normalised over blocks of cells.
Nothing in the feature is learnt; only the linear probe on top of it sees labels.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["hog_features"]


def hog_features(images: torch.Tensor, *, orientations: int = 9, cell: int = 8,
                 block: int = 2) -> torch.Tensor:
    """(N, F) float32 HOG descriptors of (N, C, H, W) float ``images`` (values in [0, 1]).

    Each image is averaged over its channels to grey, then ``skimage.feature.hog`` bins gradient
    orientations (``orientations`` unsigned bins) in ``cell x cell``-pixel cells and L2-Hys
    normalises every ``block x block`` group of cells; ``F = orientations * block**2 *
    (H // cell - block + 1) * (W // cell - block + 1)``.

    Raises ValueError when ``images`` is not a non-empty float (N, C, H, W) tensor, when
    ``orientations`` / ``cell`` / ``block`` is not an int >= 1 (``orientations`` >= 2), or when
    the image is smaller than one block of cells.
    """
    from skimage.feature import hog

    if (not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0
            or not images.is_floating_point()):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a non-empty float (N, C, H, W) tensor, got {got}")
    for name, value, low in (("orientations", orientations, 2), ("cell", cell, 1),
                             ("block", block, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    _, _, H, W = images.shape
    if min(H, W) < cell * block:
        raise ValueError(f"images must be at least cell * block = {cell * block} pixels wide, "
                         f"got {H}x{W}")
    grey = images.detach().float().mean(1).cpu().numpy()          # (N, H, W)
    feats = [hog(g, orientations=orientations, pixels_per_cell=(cell, cell),
                 cells_per_block=(block, block), block_norm="L2-Hys", feature_vector=True)
             for g in grey]
    return torch.from_numpy(np.stack(feats).astype(np.float32))
