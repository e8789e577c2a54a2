"""scikit-learn's bundled handwritten digits as a small real image classification set.

Chapter 03 (datasets) and chapter 09 (linear probe). 1,797 grey 8x8 images of the digits 0-9 ship
inside scikit-learn (no download). They are upscaled to ``image_size`` and repeated to 3 channels
(white ink on black, like ShapeWorld's plain background); captions read "a handwritten digit seven".
"""

from __future__ import annotations

import numpy as np
import torch

from .image_set import ImageClassificationSet, to_square

DIGIT_NAMES: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)
DIGIT_SPLITS = ("all", "train", "test")


def load_digits(split: str = "all", image_size: int = 32, test_fraction: float = 0.25,
                seed: int = 0) -> ImageClassificationSet:
    """The digits as an :class:`ImageClassificationSet`.

    ``split``: "all" (1,797 images), "train" or "test" -- a stratified split with ``test_fraction``
    of every class in test, fixed by ``seed``. Images: (N, 3, image_size, image_size) float32 in
    [0, 1]. Class names are the digit words ("zero" ... "nine").
    Raises ``ValueError`` naming ``split``, ``test_fraction``, ``seed`` or ``image_size``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    if split not in DIGIT_SPLITS:
        raise ValueError(f"split: expected one of {DIGIT_SPLITS}, got {split!r}")
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits as sklearn_digits

    raw = sklearn_digits()
    labels = np.asarray(raw.target, dtype=np.int64)
    if split != "all":
        rng = np.random.default_rng(seed)
        test_mask = np.zeros(len(labels), dtype=bool)
        for c in range(10):
            members = np.flatnonzero(labels == c)
            picked = rng.permutation(members)[: int(round(test_fraction * len(members)))]
            test_mask[picked] = True
        keep = np.flatnonzero(test_mask if split == "test" else ~test_mask)
    else:
        keep = np.arange(len(labels))
    grey = torch.from_numpy(raw.images[keep].astype(np.float32) / 16.0)  # (N, 8, 8) in [0, 1]
    images = to_square(grey[:, None], image_size).expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(labels[keep])
    captions = [f"a handwritten digit {DIGIT_NAMES[int(c)]}" for c in y]
    return ImageClassificationSet(images, y, DIGIT_NAMES, captions, name=f"digits-{split}")
