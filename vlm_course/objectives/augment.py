"""Batched, seeded image augmentations for image contrastive learning (SimCLR) on ShapeWorld.

Chapter 04 "Contrastive objectives", after Chen et al. 2020 (SimCLR): two random views of each
image are a positive pair, so the features learn to ignore whatever the augmentations change.
All functions take ``images`` of shape ``(B, 3, H, W)``, float in ``[0, 1]``, return the same
shape and range, draw every random number from a ``torch.Generator`` (on the CPU, then moved to
the images' device) so a seed reproduces the batch exactly, and treat each image independently.

Which augmentations destroy a caption's truth (see :data:`CAPTION_EFFECTS`)
-----------------------------------------------------------------------------
Image-only contrastive learning never reads captions, but an image-text pair stays correct only
if the augmentation keeps every word true:

* **horizontal flip** swaps left and right: "a circle left of a square", "top left" become false
  (shape, colour, size and count words survive);
* **hue jitter** rotates colours: "a red circle" may become orange or purple; saturation jitter and
  grayscale fade the colour words too; brightness/contrast move colours towards black/grey
  (ShapeWorld's light/dark colour pairs can swap);
* **random resized crop** can cut an object out (counts, relations and "two shapes" change), cut it
  in half (its shape word), and rescales everything ("small"/"large" lose their meaning) and moves
  objects between grid cells ("top", "centre").

So the features a SimCLR model learns are invariant to colour (and partly to position and size) by
construction: chapter 04 measures its colour linear probe near chance after colour distortion,
and shows that shape, the harder signal, needs far longer training than the demo affords.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CAPTION_EFFECTS",
    "AugmentConfig",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "augment",
    "colour_jitter",
    "random_grayscale",
    "random_horizontal_flip",
    "random_resized_crop",
    "two_views",
]

#: augmentation -> caption words it can make false on ShapeWorld.
CAPTION_EFFECTS: dict[str, str] = {
    "horizontal flip": "left/right relations and positions ('left of', 'top left')",
    "hue jitter": "colour words ('red' may become 'orange' or 'purple')",
    "saturation jitter / grayscale": "colour words (colours fade towards grey)",
    "brightness / contrast": "light vs dark colour words, mildly",
    "random resized crop": "counts, relations, positions, sizes; a cut object loses its shape",
}

# Luma weights (ITU-R 601) used by torchvision's rgb_to_grayscale; matching them lets the tests
# compare with torchvision exactly.
_LUMA = (0.2989, 0.587, 0.114)


# ----------------------------------------------------------------------------- checks
def _check_images(images: object) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    return images


def _check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
    return generator


def _check_probability(name: str, p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_factor(name: str, factor: Tensor, batch: int) -> Tensor:
    if not isinstance(factor, Tensor) or factor.shape != (batch,):
        got = tuple(factor.shape) if isinstance(factor, Tensor) else type(factor).__name__
        raise ValueError(f"{name} must be a tensor of shape (B,) = ({batch},), got {got}")
    return factor


def _uniform(batch: int, low: float, high: float, generator, images: Tensor) -> Tensor:
    """(B,) uniform samples in [low, high), drawn on the CPU, returned on the images' device."""
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    return (low + (high - low) * u).to(device=images.device, dtype=images.dtype)


def _coin(batch: int, p: float, generator, images: Tensor) -> Tensor:
    """(B,) booleans, True with probability p."""
    return (torch.rand(batch, generator=generator) < p).to(images.device)


# ----------------------------------------------------------------------------- geometry
def random_resized_crop(
    images: Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Tensor:
    """Crop a random box from each image and resize it back to ``(H, W)`` (bilinear).

    The box covers a fraction ``a ~ U(scale)`` of the area with aspect ratio ``r`` (``log r``
    uniform in ``log ratio``): width ``sqrt(a r)`` and height ``sqrt(a / r)`` as fractions of the
    image, clipped to 1 (torchvision retries instead), at a uniform position inside the image.
    Implemented for the whole batch at once with ``affine_grid`` + ``grid_sample``.
    """
    images = _check_images(images)
    _check_generator(generator)
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio!r}")
    B = images.shape[0]
    area = _uniform(B, lo, hi, generator, images)
    log_r = _uniform(B, math.log(ratio[0]), math.log(ratio[1]), generator, images)
    w = (area * log_r.exp()).sqrt().clamp(max=1.0)  # (B,) box width / image width
    h = (area / log_r.exp()).sqrt().clamp(max=1.0)  # (B,) box height / image height
    cx = (2 * _uniform(B, 0, 1, generator, images) - 1) * (1 - w)  # centre in [-1, 1] coords
    cy = (2 * _uniform(B, 0, 1, generator, images) - 1) * (1 - h)
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w, zero, cx], -1), torch.stack([zero, h, cy], -1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp(0, 1)


def random_horizontal_flip(
    images: Tensor, generator: torch.Generator | None = None, p: float = 0.5
) -> Tensor:
    """Mirror each image left-right with probability ``p`` (breaks 'left of' captions)."""
    images = _check_images(images)
    _check_generator(generator)
    _check_probability("p", p)
    flip = _coin(images.shape[0], p, generator, images)  # (B,)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


# ----------------------------------------------------------------------------- colour
def _grayscale(images: Tensor) -> Tensor:
    """(B, 1, H, W) luma."""
    r, g, b = images.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """Multiply image ``i`` by ``factor[i]`` ``(B,)`` and clip to [0, 1]."""
    images = _check_images(images)
    factor = _check_factor("factor", factor, images.shape[0])
    return (images * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend image ``i`` with its mean grey level: ``f x + (1 - f) mean(luma(x))``, clipped."""
    images = _check_images(images)
    f = _check_factor("factor", factor, images.shape[0]).view(-1, 1, 1, 1)
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (f * images + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend image ``i`` with its own grayscale: 0 gives grey, 1 the original, >1 more vivid."""
    images = _check_images(images)
    f = _check_factor("factor", factor, images.shape[0]).view(-1, 1, 1, 1)
    return (f * images + (1 - f) * _grayscale(images)).clamp(0, 1)


def _rgb_to_hsv(images: Tensor) -> Tensor:
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


def _hsv_to_rgb(hsv: Tensor) -> Tensor:
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


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of image ``i`` by ``shift[i]`` turns, ``shift`` in ``[-0.5, 0.5]`` (B,)."""
    images = _check_images(images)
    shift = _check_factor("shift", shift, images.shape[0])
    if (shift.abs() > 0.5).any():
        raise ValueError(f"shift must lie in [-0.5, 0.5], got {shift.tolist()}")
    hsv = _rgb_to_hsv(images)
    hue = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return _hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


def colour_jitter(
    images: Tensor,
    generator: torch.Generator | None = None,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> Tensor:
    """Random brightness, contrast, saturation (factors ``U[1 - s, 1 + s]``) then hue
    (``U[-h, h]``).

    A fixed order, unlike torchvision's random order, so the function is easy to read; a strength
    of 0 leaves that property untouched.
    """
    images = _check_images(images)
    _check_generator(generator)
    for name, value in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("saturation", saturation),
    ):
        if not 0 <= value:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must lie in [0, 0.5], got {hue!r}")
    B = images.shape[0]
    out = images
    for adjust, s in ((adjust_brightness, brightness), (adjust_contrast, contrast)):
        out = adjust(out, _uniform(B, max(0.0, 1 - s), 1 + s, generator, images))
    out = adjust_saturation(
        out, _uniform(B, max(0.0, 1 - saturation), 1 + saturation, generator, images)
    )
    if hue > 0:
        out = adjust_hue(out, _uniform(B, -hue, hue, generator, images))
    return out


def random_grayscale(
    images: Tensor, generator: torch.Generator | None = None, p: float = 0.2
) -> Tensor:
    """Replace image ``i`` by its luma (copied to 3 channels) with probability ``p``."""
    images = _check_images(images)
    _check_generator(generator)
    _check_probability("p", p)
    gray = _coin(images.shape[0], p, generator, images)
    return torch.where(gray[:, None, None, None], _grayscale(images).expand_as(images), images)


# ----------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class AugmentConfig:
    """SimCLR-style augmentation strengths (defaults tuned for 64x64 ShapeWorld scenes)."""

    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2


def augment(
    images: Tensor, generator: torch.Generator | None = None, config: AugmentConfig | None = None
) -> Tensor:
    """One random view: crop -> flip -> colour jitter (with probability ``jitter_p``) ->
    grayscale."""
    images = _check_images(images)
    cfg = config if config is not None else AugmentConfig()
    if not isinstance(cfg, AugmentConfig):
        raise TypeError(f"config must be an AugmentConfig, got {type(cfg).__name__}")
    _check_probability("config.jitter_p", cfg.jitter_p)
    out = random_resized_crop(images, generator, cfg.crop_scale, cfg.crop_ratio)
    out = random_horizontal_flip(out, generator, cfg.flip_p)
    jittered = colour_jitter(out, generator, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
    keep = _coin(images.shape[0], cfg.jitter_p, generator, images)
    out = torch.where(keep[:, None, None, None], jittered, out)
    return random_grayscale(out, generator, cfg.grayscale_p)


def two_views(
    images: Tensor, generator: torch.Generator | None = None, config: AugmentConfig | None = None
) -> tuple[Tensor, Tensor]:
    """Two independent random views ``(B, 3, H, W)`` each: SimCLR's positive pairs."""
    return augment(images, generator, config), augment(images, generator, config)
