"""scikit-image's bundled photographs as a handful of real test images.

Chapter 03 (datasets) and chapter 13 (real models). These images ship inside scikit-image, so they
load offline; they are the course's stand-in for "a real photo" when no dataset is available.
"""

from __future__ import annotations

import numpy as np
import torch

from .image_set import ImageClassificationSet, to_square

#: scikit-image function name -> (class name, caption).
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "a photo of an astronaut"),
    "coffee": ("coffee", "a photo of a cup of coffee"),
    "chelsea": ("cat", "a photo of a cat"),
    "rocket": ("rocket", "a photo of a rocket"),
}


def load_photos(names: tuple[str, ...] | None = None,
                image_size: int = 64) -> ImageClassificationSet:
    """The photos ``names`` (default: all of :data:`PHOTOS`), centre-cropped and resized.

    Returns an :class:`ImageClassificationSet` whose label i is photo i (class names "astronaut",
    "coffee", "cat", "rocket"), images (N, 3, image_size, image_size) float32 in [0, 1].
    Raises ``ValueError`` naming ``names`` (unknown or empty, or a lone string) or
    ``image_size``.
    """
    if isinstance(names, str):
        raise ValueError(f"names: expected a tuple of names from {tuple(PHOTOS)}, got the "
                         f"string {names!r} (write ({names!r},))")
    names = tuple(PHOTOS) if names is None else tuple(names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown or not names:
        raise ValueError(f"names: expected names from {tuple(PHOTOS)}, got {names!r}")
    from skimage import data

    tensors = []
    for n in names:
        arr = np.asarray(getattr(data, n)(), dtype=np.float32) / 255.0  # (H, W, 3)
        img = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1, 3, H, W)
        tensors.append(to_square(img, image_size))
    images = torch.cat(tensors)
    class_names = tuple(PHOTOS[n][0] for n in names)
    captions = [PHOTOS[n][1] for n in names]
    return ImageClassificationSet(images, torch.arange(len(names)), class_names, captions,
                                  name="skimage-photos")
