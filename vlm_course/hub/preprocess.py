"""Image preprocessing of a real CLIP in torch: photos -> the (B, 3, S, S) pixels its tower takes.

Chapter 13.  A pretrained CLIP (Radford et al. 2021) sees images resized so that the shorter side
is ``S`` pixels (bicubic), centre-cropped to ``S x S`` and normalised per channel with the mean and
standard deviation of its training images.  The course's own models take ``(B, 3, H, W)`` floats in
``[0, 1]`` at their training size and no normalisation (``mean = 0``, ``std = 1``), so
the adapters of :mod:`vlm_course.hub.adapters` keep the course's input convention --- float images
in ``[0, 1]`` --- and apply this module's :class:`ImagePreprocess` inside ``encode_image``.

Done in torch rather than with PIL so that it runs on a batch on any device and lets gradients
through; resizing uses antialiased bicubic interpolation like Hugging Face's fast image
processors, so pixel values may differ from a PIL-based processor by a few levels of 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImagePreprocess", "photo_tensor"]


def photo_tensor(photo) -> torch.Tensor:
    """``(3, H, W)`` float32 in ``[0, 1]`` from a photo as loaded by scikit-image / PIL / numpy.

    Accepts ``(H, W)`` grey or ``(H, W, 3|4)`` colour arrays of ``uint8`` (0..255), ``bool`` or
    floats in ``[0, 1]``, or a ``(3, H, W)`` float tensor (returned as float32).  Grey becomes three
    equal channels, an alpha channel is dropped.
    Raises TypeError for other types and ValueError for other shapes.
    """
    if torch.is_tensor(photo):
        if photo.dim() == 3 and photo.shape[0] == 3 and photo.is_floating_point():
            return photo.float()
        photo = photo.cpu().numpy()
    if hasattr(photo, "convert") and hasattr(photo, "size"):   # a PIL image
        photo = np.asarray(photo.convert("RGB"))
    if not isinstance(photo, np.ndarray):
        raise TypeError(f"photo must be a numpy array, a PIL image or a (3, H, W) float tensor, "
                        f"got {type(photo).__name__}")
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    if photo.ndim != 3 or photo.shape[2] not in (3, 4):
        raise ValueError(f"photo must be (H, W) or (H, W, 3|4), got shape {photo.shape}")
    photo = photo[:, :, :3]
    if photo.dtype == np.uint8:
        x = torch.from_numpy(np.ascontiguousarray(photo)).float() / 255
    elif photo.dtype == np.bool_ or np.issubdtype(photo.dtype, np.floating):
        x = torch.from_numpy(np.ascontiguousarray(photo, dtype=np.float32))
    else:
        raise TypeError(f"photo must be uint8, bool or float, got dtype {photo.dtype}")
    return x.permute(2, 0, 1).contiguous()          # (H, W, 3) -> (3, H, W)


def _get(sizes, key: str):
    """``sizes[key]`` of a Hugging Face size dict (a ``dict`` or a ``SizeDict``), else None."""
    return sizes.get(key) if isinstance(sizes, dict) else getattr(sizes, key, None)


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize the shorter side to ``size``, centre-crop ``crop = (H, W)``, normalise.

    ``mean`` / ``std``: per-channel statistics applied after the crop (``(0, 0, 0)`` /
    ``(1, 1, 1)`` for the course's models).  ``interpolation``: ``"bicubic"`` (CLIP) or
    ``"bilinear"``.  Calling it maps ``(B, 3, H, W)`` floats in ``[0, 1]`` to the
    ``(B, 3, *crop)`` pixel values the model's image tower takes.
    """

    size: int
    crop: tuple[int, int]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: str = "bicubic"

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be an int >= 1, got {self.size!r}")
        crop = (self.crop, self.crop) if isinstance(self.crop, int) else tuple(self.crop)
        if len(crop) != 2 or not all(isinstance(c, int) and c >= 1 for c in crop):
            raise ValueError(f"crop must be an int or (H, W) of ints >= 1, got {self.crop!r}")
        if self.size < max(crop):
            raise ValueError(f"size must be >= the crop {crop} (the crop is cut from the resized "
                             f"image), got {self.size}")
        object.__setattr__(self, "crop", crop)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std must hold 3 values (std > 0), got {self.mean!r} and "
                             f"{self.std!r}")
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"interpolation must be 'bicubic' or 'bilinear', got "
                             f"{self.interpolation!r}")

    @classmethod
    def from_hf(cls, processor) -> ImagePreprocess:
        """From a Hugging Face ``CLIPImageProcessor`` (or a ``CLIPProcessor`` holding one)."""
        proc = getattr(processor, "image_processor", processor)
        size = proc.size if isinstance(proc.size, int) else (
            _get(proc.size, "shortest_edge") or _get(proc.size, "height"))
        crop = proc.crop_size if getattr(proc, "do_center_crop", True) else None
        crop = (_get(crop, "height"), _get(crop, "width")) if crop else (size, size)
        mean = tuple(proc.image_mean) if getattr(proc, "do_normalize", True) else (0.0,) * 3
        std = tuple(proc.image_std) if getattr(proc, "do_normalize", True) else (1.0,) * 3
        return cls(int(size), crop, mean, std)

    @classmethod
    def from_open_clip(cls, model) -> ImagePreprocess:
        """From an ``open_clip`` model: its ``visual.image_size``, ``image_mean``, ``image_std``
        (OpenAI's statistics when the model does not carry them)."""
        visual = model.visual
        hw = visual.image_size
        hw = (hw, hw) if isinstance(hw, int) else tuple(hw)
        mean = getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        std = getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
        return cls(min(hw), hw, tuple(mean), tuple(std))

    def resize_crop(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, *crop)`` in [0, 1]; unchanged at the crop size.

        Raises TypeError for a non-float tensor, ValueError for a wrong shape.
        """
        if not torch.is_tensor(images) or not images.is_floating_point():
            raise TypeError(f"images must be a float tensor (B, 3, H, W) in [0, 1], got "
                            f"{getattr(images, 'dtype', type(images).__name__)}")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        H, W = images.shape[-2:]
        ch, cw = self.crop
        if (H, W) == (ch, cw):
            return images
        if H <= W:    # the shorter side becomes ``size``; the longer one is floored (as HF)
            h, w = self.size, int(self.size * W / H)
        else:
            h, w = int(self.size * H / W), self.size
        x = F.interpolate(images, size=(h, w), mode=self.interpolation, align_corners=False,
                          antialias=True).clamp(0, 1)
        top, left = (h - ch) // 2, (w - cw) // 2    # offsets floored, as Hugging Face does
        return x[:, :, top:top + ch, left:left + cw]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` per channel, ``(B, 3, H, W)`` -> same shape."""
        mean = images.new_tensor(self.mean).view(1, 3, 1, 1)
        std = images.new_tensor(self.std).view(1, 3, 1, 1)
        return (images - mean) / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.resize_crop(images))

    def photos(self, photos: Sequence) -> torch.Tensor:
        """``(B, 3, *crop)`` float in [0, 1] from photos of any sizes (see :func:`photo_tensor`),
        resized and cropped one by one -- the batch :mod:`vlm_course.evaluation` takes.

        Raises ValueError for an empty list; TypeError / ValueError as :func:`photo_tensor`.
        """
        if isinstance(photos, (str, bytes)) or not isinstance(photos, Sequence) or not photos:
            raise ValueError(f"photos must be a non-empty list of images, got {photos!r:.60}")
        return torch.cat([self.resize_crop(photo_tensor(p)[None]) for p in photos])
