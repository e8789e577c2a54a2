"""A small in-memory image classification set with class names and captions.

Chapter 03 (datasets): the real-data adapters (digits, photos, CIFAR-10, image folders) all return
this one type, so evaluation code (zero-shot, linear probe) treats them like ShapeWorld batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vlm_course.text.articles import fix_articles


@dataclass(eq=False)
class ImageClassificationSet(Dataset):
    """``images`` (N, 3, H, W) float32 in [0, 1]; ``labels`` (N,) int64 indexing ``class_names``;
    ``captions``: one caption per image (e.g. "a handwritten digit seven"); ``name``: a short id.

    ``set[i]`` is ``(image (3, H, W), label 0-d int64)``, ready for a ``DataLoader``.
    Raises ``TypeError`` when ``images`` is not a float tensor or ``labels`` not an integer
    tensor, ``ValueError`` when the shapes disagree, a label is outside ``class_names`` or the
    number of captions differs from the number of images.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    captions: list[str]
    name: str = "images"

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or not self.images.is_floating_point():
            raise TypeError(f"images: expected a float tensor (N, 3, H, W), got "
                            f"{getattr(self.images, 'dtype', type(self.images).__name__)}")
        if not isinstance(self.labels, torch.Tensor) or self.labels.is_floating_point():
            raise TypeError(f"labels: expected an int64 tensor (N,), got "
                            f"{getattr(self.labels, 'dtype', type(self.labels).__name__)}")
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images: expected (N, 3, H, W), got {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels: expected ({self.images.shape[0]},), got "
                             f"{tuple(self.labels.shape)}")
        if len(self.captions) != len(self.labels):
            raise ValueError(f"captions: expected {len(self.labels)}, got {len(self.captions)}")
        if self.labels.numel() and (int(self.labels.min()) < 0
                                    or int(self.labels.max()) >= len(self.class_names)):
            raise ValueError(f"labels: expected values in [0, {len(self.class_names)}) (one per "
                             f"class name), got [{int(self.labels.min())}, "
                             f"{int(self.labels.max())}]")

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __repr__(self) -> str:
        return (f"ImageClassificationSet(name={self.name!r}, n={len(self)}, "
                f"image={tuple(self.images.shape[1:])}, classes={len(self.class_names)})")

    def prompts(self, template: str = "a photo of a {}") -> list[str]:
        """One prompt per class, ``template.format(class_name)``.  Raises ``ValueError`` when
        ``template`` is not a string with ``{}``."""
        if not isinstance(template, str) or "{}" not in template:
            raise ValueError(f"template: expected a string with one '{{}}', got {template!r}")
        return [fix_articles(template.format(c)) for c in self.class_names]


def to_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop (N, C, H, W) images to a square and resize to ``size`` (antialiased bilinear).

    Raises ``ValueError`` naming ``image_size`` (the loaders' argument) when ``size`` is not an
    int in [8, 1024], and naming ``images`` when it is not a non-empty float (N, C, H, W) tensor.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise ValueError(f"image_size: expected an int in [8, 1024], got {size!r}")
    if (not isinstance(images, torch.Tensor) or images.dim() != 4 or images.numel() == 0
            or not images.is_floating_point()):
        got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise ValueError(f"images: expected a non-empty float (N, C, H, W) tensor, got {got}")
    _, _, H, W = images.shape
    side = min(H, W)
    top, left = (H - side) // 2, (W - side) // 2
    square = images[:, :, top:top + side, left:left + side]
    if side == size:
        return square.contiguous()
    out = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=side > size)
    return out.clamp_(0.0, 1.0)
