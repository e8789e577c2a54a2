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

from .hsv import hsv_to_rgb, rgb_to_hsv

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
    if images.numel() == 0:
        raise ValueError(f"images must hold B >= 1 non-empty images, got {tuple(images.shape)}")
    low, high = images.aminmax()
    if not (0.0 <= float(low) and float(high) <= 1.0):  # also False for NaN
        raise ValueError(f"images must lie in [0, 1] (finite), got values in "
                         f"[{float(low)}, {float(high)}]")
    return images


def _check_range(name: str, value: object, low: float, high: float) -> float:
    """A real number in [low, high] (bool, NaN and non-numbers rejected), returned as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        low <= value <= high
    ):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _check_interval(name: str, value: object, low: float, high: float) -> tuple[float, float]:
    """A pair (a, b) of numbers with low < a <= b <= high."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    )
    if not ok or not low < value[0] <= value[1] <= high:
        raise ValueError(f"{name} must be a pair (low, high) with {low} < low <= high <= {high}, "
                         f"got {value!r}")
    return float(value[0]), float(value[1])


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
    if not factor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {factor.dtype}")
    if not torch.isfinite(factor).all():
        raise ValueError(f"{name} must be finite, got {factor.tolist()}")
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

    Raises:
        TypeError: ``images`` is not a float tensor or ``generator`` not a ``torch.Generator``.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``scale`` /
            ``ratio`` is not a pair ``0 < low <= high`` (``scale`` also ``<= 1``).
    """
    images = _check_images(images)
    _check_generator(generator)
    lo, hi = _check_interval("scale", scale, 0.0, 1.0)
    ratio = _check_interval("ratio", ratio, 0.0, math.inf)
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
    """Mirror each image left-right with probability ``p`` (breaks 'left of' captions).

    Raises:
        TypeError: ``images`` is not a float tensor or ``generator`` not a ``torch.Generator``.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``p`` is not
            in [0, 1].
    """
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
    """Multiply image ``i`` by ``factor[i]`` ``(B,)`` and clip to [0, 1].

    Raises:
        TypeError: ``images`` is not a float tensor or ``factor`` not a float tensor.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``factor`` is
            not a finite ``(B,)`` tensor.
    """
    images = _check_images(images)
    factor = _check_factor("factor", factor, images.shape[0])
    return (images * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend image ``i`` with its mean grey level: ``f x + (1 - f) mean(luma(x))``, clipped.

    Raises:
        TypeError: ``images`` is not a float tensor or ``factor`` not a float tensor.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``factor`` is
            not a finite ``(B,)`` tensor.
    """
    images = _check_images(images)
    f = _check_factor("factor", factor, images.shape[0]).view(-1, 1, 1, 1)
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (f * images + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend image ``i`` with its own grayscale: 0 gives grey, 1 the original, >1 more vivid.

    Raises:
        TypeError: ``images`` is not a float tensor or ``factor`` not a float tensor.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``factor`` is
            not a finite ``(B,)`` tensor.
    """
    images = _check_images(images)
    f = _check_factor("factor", factor, images.shape[0]).view(-1, 1, 1, 1)
    return (f * images + (1 - f) * _grayscale(images)).clamp(0, 1)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of image ``i`` by ``shift[i]`` turns, ``shift`` in ``[-0.5, 0.5]`` (B,).

    Raises:
        TypeError: ``images`` is not a float tensor or ``shift`` not a float tensor.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``shift`` is
            not a ``(B,)`` tensor in [-0.5, 0.5].
    """
    images = _check_images(images)
    shift = _check_factor("shift", shift, images.shape[0])
    if (shift.abs() > 0.5).any():
        raise ValueError(f"shift must lie in [-0.5, 0.5], got {shift.tolist()}")
    hsv = rgb_to_hsv(images)
    hue = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


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

    Raises:
        TypeError: ``images`` is not a float tensor or ``generator`` not a ``torch.Generator``.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], a strength is
            not a number >= 0, or ``hue`` is not in [0, 0.5].
    """
    images = _check_images(images)
    _check_generator(generator)
    for name, value in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("saturation", saturation),
    ):
        _check_range(name, value, 0.0, math.inf)
    _check_range("hue", hue, 0.0, 0.5)
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
    """Replace image ``i`` by its luma (copied to 3 channels) with probability ``p``.

    Raises:
        TypeError: ``images`` is not a float tensor or ``generator`` not a ``torch.Generator``.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1], or ``p`` is not
            in [0, 1].
    """
    images = _check_images(images)
    _check_generator(generator)
    _check_probability("p", p)
    gray = _coin(images.shape[0], p, generator, images)
    return torch.where(gray[:, None, None, None], _grayscale(images).expand_as(images), images)


# ----------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class AugmentConfig:
    """SimCLR-style augmentation strengths (defaults tuned for 64x64 ShapeWorld scenes).

    Raises ``ValueError`` naming the field (``AugmentConfig.flip_p`` ...) when a probability is
    outside [0, 1], a strength is negative, ``hue`` is outside [0, 0.5] or ``crop_scale`` /
    ``crop_ratio`` is not a pair ``0 < low <= high`` (``crop_scale`` also ``<= 1``).
    """

    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        _check_interval("AugmentConfig.crop_scale", self.crop_scale, 0.0, 1.0)
        _check_interval("AugmentConfig.crop_ratio", self.crop_ratio, 0.0, math.inf)
        for name in ("flip_p", "jitter_p", "grayscale_p"):
            _check_range(f"AugmentConfig.{name}", getattr(self, name), 0.0, 1.0)
        for name in ("brightness", "contrast", "saturation"):
            _check_range(f"AugmentConfig.{name}", getattr(self, name), 0.0, math.inf)
        _check_range("AugmentConfig.hue", self.hue, 0.0, 0.5)


def augment(
    images: Tensor, generator: torch.Generator | None = None, config: AugmentConfig | None = None
) -> Tensor:
    """One random view: crop -> flip -> colour jitter (with probability ``jitter_p``) ->
    grayscale.

    Raises:
        TypeError: ``images`` is not a float tensor, ``generator`` not a ``torch.Generator`` or
            ``config`` not an :class:`AugmentConfig`.
        ValueError: ``images`` is not a non-empty ``(B, 3, H, W)`` batch in [0, 1].
    """
    images = _check_images(images)
    _check_generator(generator)
    cfg = config if config is not None else AugmentConfig()
    if not isinstance(cfg, AugmentConfig):
        raise TypeError(f"config must be an AugmentConfig, got {type(cfg).__name__}")
    out = random_resized_crop(images, generator, cfg.crop_scale, cfg.crop_ratio)
    out = random_horizontal_flip(out, generator, cfg.flip_p)
    jittered = colour_jitter(out, generator, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
    keep = _coin(images.shape[0], cfg.jitter_p, generator, images)
    out = torch.where(keep[:, None, None, None], jittered, out)
    return random_grayscale(out, generator, cfg.grayscale_p)


def two_views(
    images: Tensor, generator: torch.Generator | None = None, config: AugmentConfig | None = None
) -> tuple[Tensor, Tensor]:
    """Two independent random views ``(B, 3, H, W)`` each: SimCLR's positive pairs.

    Raises what :func:`augment` raises.
    """
    return augment(images, generator, config), augment(images, generator, config)
