"""RGB <-> HSV for batches of images, used by the hue jitter of :mod:`.augment` (chapter 04).

The same conversion as torchvision's functional ``adjust_hue`` (which the augmentation tests
compare with), written for ``(B, 3, H, W)`` tensors with hue measured in turns.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["hsv_to_rgb", "rgb_to_hsv"]


def rgb_to_hsv(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 3, H, W)`` (hue in turns [0, 1), saturation, value).

    Grey pixels (max == min) get hue 0 and saturation 0.  No checks: callers validate ``images``.
    """
    r, g, b = images.unbind(1)  # each (B, H, W)
    maxc, minc = images.max(dim=1).values, images.min(dim=1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))  # avoid 0/0 on grey pixels
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    h = torch.where(
        maxc == r, (g - b) / safe, torch.where(maxc == g, 2 + (b - r) / safe, 4 + (r - g) / safe)
    )
    h = torch.where(delta > 0, h / 6 % 1.0, torch.zeros_like(h))  # hue in [0, 1)
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`: ``(B, 3, H, W)`` HSV (hue in turns) -> RGB in [0, 1]."""
    h, s, v = hsv.unbind(1)
    sector = torch.floor(h * 6)
    f = h * 6 - sector  # position inside the 60-degree sector
    i = sector.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # rows: sector 0..5; columns: (r, g, b)
    table = torch.stack(
        [
            torch.stack([v, t, p], 1),
            torch.stack([q, v, p], 1),
            torch.stack([p, v, t], 1),
            torch.stack([p, q, v], 1),
            torch.stack([t, p, v], 1),
            torch.stack([v, p, q], 1),
        ],
        dim=1,
    )  # (B, 6, 3, H, W)
    index = i[:, None, None].expand(-1, 1, 3, -1, -1)  # (B, 1, 3, H, W)
    return table.gather(1, index).squeeze(1)
