"""Real datasets that are already on disk: CIFAR-10 (binary version) and image folders.

Chapter 03 (datasets) and chapter 13 (real models). The course never downloads anything: these
loaders read a local folder and, when it is missing, raise ``FileNotFoundError`` with the commands
to fetch the data on a machine with internet. CIFAR-10 is read from its *binary* distribution
with NumPy (the Python distribution is pickled, and the course never loads pickles).

CIFAR-10 binary format (Krizhevsky, 2009): ``data_batch_1.bin`` ... ``data_batch_5.bin`` (train,
10,000 images each) and ``test_batch.bin``; each record is 1 label byte then 3,072 pixel bytes
(1,024 red, 1,024 green, 1,024 blue, row-major 32x32); ``batches.meta.txt`` lists the class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vlm_course.text.articles import fix_articles

from .image_set import ImageClassificationSet, to_square

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
_RECORD = 1 + 3 * 32 * 32


def cifar10_missing_message(root: Path) -> str:
    """The error text for a missing CIFAR-10 folder: where it is expected and how to fetch it."""
    return (
        f"CIFAR-10 (binary version) not found: expected {root / 'cifar-10-batches-bin'} with "
        "data_batch_1.bin ... data_batch_5.bin and test_batch.bin. This course never downloads "
        "data. On a machine with internet, run\n"
        f"    curl -O {CIFAR10_URL}\n"
        f"    tar -xzf cifar-10-binary.tar.gz -C {root}\n"
        "then copy the folder cifar-10-batches-bin to this machine under that root. (The Python "
        "version downloaded by torchvision is stored as pickles, which the course does not load.)"
    )


def load_cifar10(root: str | Path, train: bool = True, limit: int | None = None,
                 image_size: int = 32) -> ImageClassificationSet:
    """CIFAR-10 from ``root/cifar-10-batches-bin`` as an :class:`ImageClassificationSet`.

    ``limit`` keeps the first ``limit`` images (for quick experiments). Captions: "a photo of a
    {class}". Raises ``FileNotFoundError`` (with download instructions) when the files are absent
    and ``ValueError`` naming ``limit`` / ``image_size`` or the file for bad values or a file whose
    size is not a whole number of records.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-bin"
    files = [folder / f"data_batch_{i}.bin" for i in range(1, 6)] if train else [
        folder / "test_batch.bin"]
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(cifar10_missing_message(root))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: expected None or an int >= 1, got {limit!r}")
    chunks = []
    remaining = limit
    for f in files:
        raw = np.fromfile(f, dtype=np.uint8)
        if raw.size % _RECORD:
            raise ValueError(f"{f}: size {raw.size} is not a multiple of the {_RECORD}-byte record")
        chunks.append(raw.reshape(-1, _RECORD))
        if remaining is not None:
            remaining -= len(chunks[-1])
            if remaining <= 0:
                break
    records = np.concatenate(chunks)[:limit]
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    pixels = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    meta = folder / "batches.meta.txt"
    names = CIFAR10_CLASSES
    if meta.is_file():
        listed = tuple(w.strip() for w in meta.read_text().splitlines() if w.strip())
        names = listed if len(listed) == 10 else names
    if labels.numel() and int(labels.max()) >= len(names):
        raise ValueError(f"{folder}: label {int(labels.max())} out of range for 10 classes")
    images = to_square(pixels, image_size)
    captions = [fix_articles(f"a photo of a {names[int(c)]}") for c in labels]
    return ImageClassificationSet(images, labels, names, captions,
                                  name=f"cifar10-{'train' if train else 'test'}")


def load_image_folder(root: str | Path, image_size: int = 64,
                      template: str = "a photo of a {}") -> ImageClassificationSet:
    """Images in ``root/<class name>/*.png|jpg`` (torchvision's ``ImageFolder`` layout).

    Raises ``FileNotFoundError`` for a missing or empty folder and ``ValueError`` naming
    ``template`` (a string with ``{}``) or ``image_size``.
    """
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(f"template: expected a string with one '{{}}', got {template!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder not found: {root}. Put images in {root}/<class name>/<image>.png "
            "(one folder per class); the course never downloads data.")
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    folder = ImageFolder(str(root))
    if len(folder) == 0:
        raise FileNotFoundError(f"image folder {root} contains no images")
    images, labels = [], []
    for path, label in folder.samples:
        pil = folder.loader(path).convert("RGB")
        img = pil_to_tensor(pil).float()[None] / 255.0
        images.append(to_square(img, image_size))
        labels.append(label)
    names = tuple(folder.classes)
    y = torch.tensor(labels, dtype=torch.long)
    captions = [fix_articles(template.format(names[c])) for c in labels]
    return ImageClassificationSet(torch.cat(images), y, names, captions, name=root.name)
