"""Zero-shot semantic segmentation: compare every location's image feature with class texts.

Chapter 08.  The survey's zero-shot segmentation compares "the embeddings of the given image
pixels and texts"; MaskCLIP (Zhou, Loy, Dai 2022) does it with a frozen CLIP and no training:

1. dense joint-space features ``(B, D, h, w)`` from the image tower
   (:func:`vlm_course.evaluation.dense.dense_features`: the value path, or naive patch tokens);
2. cosine similarity of each location with K class text embeddings (prompt ensembles, from
   :class:`~vlm_course.evaluation.classifier.ZeroShotClassifier`) and with a **background**
   class, whose embedding is the ensemble of background prompts ("the background", ...) — the
   text-only way to say "none of the above";
3. bilinear upsampling of the (B, 1 + K, h, w) score maps to the image size, arg-max per pixel.

Class 0 is the background and class ``1 + k`` is ``classnames[k]``, the layout of ShapeWorld's
``semantic_masks`` (0 = background, 1 + shape id), so predictions compare directly with them by
mean IoU (:func:`vlm_course.evaluation.metrics.mean_iou`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .classifier import ZeroShotClassifier, prompt_ensemble
from .dense import METHODS, dense_features
from .metrics import mean_iou
from .zeroshot import eval_mode

__all__ = ["BACKGROUND_PROMPTS", "ZeroShotSegmenter"]

#: Prompts whose ensemble is the background class (all words of the course's tokenizer).
BACKGROUND_PROMPTS: tuple[str, ...] = ("background", "the background", "a black background",
                                       "a photo of the background")


class ZeroShotSegmenter:
    """MaskCLIP-style zero-shot semantic segmentation (see the module docstring).

    Args:
        model: a VLM whose image tower has a dense hook (:mod:`vlm_course.evaluation.dense`).
        classnames: K foreground class names (class ``1 + k`` of the output).
        templates: prompt templates with ``{}`` (an ensemble when several).
        background: prompts for class 0, ensembled like a class; ``()`` means no background
            class (every pixel gets a foreground class; the output then has K channels and
            class k is ``classnames[k]``).
        method: ``"maskclip"`` (value path) or ``"naive"`` (last-block patch tokens).
        strict: refuse prompts with words the tokenizer does not know.

    ``text`` holds the (1 + K, D) unit class embeddings (background first).
    Raises ValueError for an empty class list or template list, an unknown ``method``, or
    (strict) unknown words.
    """

    def __init__(self, model, classnames: Sequence[str], templates: Sequence[str] = ("a {}",),
                 *, background: Sequence[str] = BACKGROUND_PROMPTS, method: str = "maskclip",
                 strict: bool = False):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if isinstance(background, str):
            raise ValueError(f"background must be a list of prompts (or ()), got {background!r}")
        self.model, self.method = model, method
        self.classes = ZeroShotClassifier(model, classnames, templates, strict=strict)
        rows = [self.classes.weights]
        if background:
            rows.insert(0, prompt_ensemble(model, background, strict=strict)[None])
        self.has_background = bool(background)
        self.text = torch.cat(rows)                                   # (1 + K, D) unit rows

    @property
    def num_classes(self) -> int:
        """Channels of the output: 1 + K with a background class, else K."""
        return self.text.shape[0]

    @torch.no_grad()
    def logits(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, C, H, W) cosine similarities of every pixel with the C classes.

        images: (B, 3, H, W) float in [0, 1]; ``size`` the output size (default the images').
        The (B, C, h, w) grid of similarities is upsampled bilinearly (align_corners=False).
        """
        with eval_mode(self.model):
            feats = dense_features(self.model, images, self.method).float().cpu()  # (B, D, h, w)
        sims = torch.einsum("bdhw,cd->bchw", F.normalize(feats, dim=1), self.text)
        size = tuple(images.shape[-2:]) if size is None else tuple(size)
        return F.interpolate(sims, size=size, mode="bilinear", align_corners=False)

    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(B, H, W) int64 class per pixel (0 = background when there is a background class)."""
        return torch.cat([self.logits(images[i:i + batch_size]).argmax(dim=1)
                          for i in range(0, images.shape[0], batch_size)])

    def evaluate(self, images: torch.Tensor, masks: torch.Tensor, batch_size: int = 256) -> dict:
        """:func:`~vlm_course.evaluation.metrics.mean_iou` of the predictions against ``masks``
        (B, H, W) int64 (ShapeWorld's ``semantic_masks``: 0 = background, 1 + class id).

        Raises ValueError when ``masks`` is not (B, H, W) of the images' size.
        """
        if not torch.is_tensor(masks) or masks.ndim != 3 \
                or tuple(masks.shape) != (images.shape[0], *images.shape[-2:]):
            raise ValueError(f"masks must be (B, H, W) = ({images.shape[0]}, "
                             f"{images.shape[-2]}, {images.shape[-1]}) to match images, got "
                             f"{tuple(getattr(masks, 'shape', ()))}")
        return mean_iou(self.predict(images, batch_size), masks, self.num_classes)
