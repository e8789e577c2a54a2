"""A small segmenter taught by a VLM's zero-shot dense pseudo-labels (chapter 11).

The survey's distillation methods for segmentation (e.g. MaskCLIP+, Zhou et al. 2022) use the
VLM's zero-shot segmentation as a teacher: its dense class maps (chapter 08's MaskCLIP value
path) label every pixel of unannotated images, and a small dense model trained on them inherits
the VLM's vocabulary while running one cheap forward pass.

:class:`DenseStudent` is a CNN (stride 4) with a 1x1 projection to the VLM's joint space: every
location gets a unit embedding, compared by cosine with the class text embeddings (background
first), upsampled bilinearly to the image.  So, like the detector, it classifies by text and any
class name is a valid output.  :func:`segmenter_loss` trains it with

* cross-entropy on the pixels of annotated (*base*) objects, and
* ``kd_weight`` x pixel-wise distillation (:func:`vlm_course.distill.losses.pixel_kd_loss`) of
  the teacher's soft maps on every other pixel (background and unannotated objects).

``kd_weight = 0`` is the student trained on base masks only: every unannotated pixel is then
background, novel objects included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .detector import conv_stages
from .losses import pixel_kd_loss

__all__ = ["SegmenterConfig", "DenseStudent", "segmenter_loss"]


@dataclass
class SegmenterConfig:
    """``channels`` of the conv stages (stride 4 overall), ``embed_dim`` the VLM's joint width,
    ``logit_scale`` the fixed inverse temperature of pixel-text cosines."""

    embed_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 48, 48)
    logit_scale: float = 20.0

    def __post_init__(self) -> None:
        if isinstance(self.embed_dim, bool) or not isinstance(self.embed_dim, int) \
                or self.embed_dim < 1:
            raise ValueError(f"SegmenterConfig.embed_dim must be an int >= 1, got "
                             f"{self.embed_dim!r}")
        if len(self.channels) < 2 or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"SegmenterConfig.channels must be >= 2 positive ints, got "
                             f"{self.channels!r}")
        if not 0.0 < float(self.logit_scale) < float("inf"):
            raise ValueError(f"SegmenterConfig.logit_scale must be > 0, got "
                             f"{self.logit_scale!r}")

    @classmethod
    def tiny(cls, embed_dim: int = 64) -> SegmenterConfig:
        return cls(embed_dim=embed_dim)


class DenseStudent(nn.Module):
    """Stages: :meth:`forward_features` (B, C, H/4, W/4); :meth:`encode_dense` (B, D, H/4, W/4)
    unit embeddings; ``forward(images, text)`` (B, K, H, W) logits ``scale * cos`` with the K
    rows of ``text`` (K, D), upsampled to the image size."""

    def __init__(self, config: SegmenterConfig | None = None):
        super().__init__()
        self.config = config = config or SegmenterConfig()
        self.backbone = conv_stages(config.channels)
        self.proj = nn.Conv2d(int(config.channels[-1]), config.embed_dim, 1)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 \
                or not images.is_floating_point():
            raise ValueError(f"images must be a float (B, 3, H, W) tensor, got "
                             f"{getattr(images, 'dtype', type(images).__name__)} "
                             f"{tuple(getattr(images, 'shape', ()))}")
        return self.backbone(images)

    def encode_dense(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D, H/4, W/4) unit embeddings in the VLM's joint space."""
        return F.normalize(self.proj(self.forward_features(images)), dim=1)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        emb = self.encode_dense(images)
        if not torch.is_tensor(text) or text.ndim != 2 or text.shape[1] != emb.shape[1]:
            raise ValueError(f"text must be (K, D={emb.shape[1]}) class embeddings, got "
                             f"{tuple(getattr(text, 'shape', ()))}")
        logits = self.config.logit_scale * torch.einsum("bdhw,kd->bkhw", emb,
                                                        F.normalize(text, dim=1))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, text: torch.Tensor, batch_size: int = 256):
        """(B, H, W) int64 class per pixel (row of ``text``), in eval mode."""
        was = self.training
        self.eval()
        out = torch.cat([self(images[i:i + batch_size], text).argmax(dim=1)
                         for i in range(0, images.shape[0], batch_size)])
        self.train(was)
        return out


def segmenter_loss(model: DenseStudent, batch: dict, *, pseudo_labels: bool = True,
                   kd_weight: float = 0.0, temperature: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Training loss of the student segmenter on one batch (see the module docstring).

    batch: ``images`` (B, 3, H, W); ``text`` (K, D) class embeddings (row 0 the background);
    ``labels`` (B, H, W) int64: the class of annotated pixels, -1 where nothing is annotated;
    ``teacher`` (B, K, H, W) the teacher's logits (needed with ``pseudo_labels`` or
    ``kd_weight > 0``).
    ``pseudo_labels=False``: unannotated pixels are background (base masks only); ``True``: they
    take the teacher's arg-max class (hard pseudo-labels).  Cross-entropy over every pixel, plus
    ``kd_weight`` x pixel-wise KD at ``temperature`` on the unannotated pixels.
    Returns ``(loss, {"ce", "kd"})``.  Raises ValueError for a negative ``kd_weight`` or missing
    batch keys.
    """
    if not float(kd_weight) >= 0.0:
        raise ValueError(f"kd_weight must be >= 0, got {kd_weight!r}")
    need = ["images", "text", "labels"] + (["teacher"] if pseudo_labels or kd_weight > 0 else [])
    missing = [k for k in need if k not in batch]
    if missing:
        raise ValueError(f"batch must hold {need}, missing {missing}")
    logits = model(batch["images"], batch["text"])                         # (B, K, H, W)
    labels = batch["labels"]
    annotated = labels >= 0
    fill = batch["teacher"].argmax(dim=1) if pseudo_labels else torch.zeros_like(labels)
    ce = F.cross_entropy(logits, torch.where(annotated, labels, fill))
    kd = pixel_kd_loss(logits, batch["teacher"], temperature, mask=~annotated) \
        if kd_weight > 0 else ce.detach() * 0.0
    return ce + kd_weight * kd, {"ce": float(ce.detach()), "kd": float(kd.detach())}
