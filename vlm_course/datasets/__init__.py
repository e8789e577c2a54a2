"""Real-data adapters (chapter 03): bundled digits and photos, and local CIFAR-10 / image folders.

Nothing here downloads: digits ship with scikit-learn, photos with scikit-image, and the local
loaders raise ``FileNotFoundError`` with download instructions when their folder is missing.
All return an :class:`ImageClassificationSet` (images (N, 3, H, W) in [0, 1], labels, class
names, captions).
"""

from .digits import DIGIT_NAMES, load_digits
from .image_set import ImageClassificationSet, to_square
from .local import CIFAR10_CLASSES, load_cifar10, load_image_folder
from .photos import PHOTOS, load_photos

__all__ = [
    "CIFAR10_CLASSES", "DIGIT_NAMES", "PHOTOS", "ImageClassificationSet", "load_cifar10",
    "load_digits", "load_image_folder", "load_photos", "to_square",
]
