"""The frozen teacher: what a VLM hands to a student during distillation (chapter 11).

Distillation in the survey's sense keeps the VLM fixed and reads three things out of it:

* **crop embeddings** (ViLD-image, Gu et al. 2022): each region proposal is cut out of its image
  (:func:`vlm_course.evaluation.detection.crop_regions`: outside the box painted in the
  background colour) and encoded by the image tower — the target of a region's embedding;
* **class text embeddings** (ViLD-text): prompt-ensemble embeddings of the class names
  (:class:`~vlm_course.evaluation.classifier.ZeroShotClassifier`) — the student's classifier;
* **dense pseudo-labels**: the VLM's zero-shot segmentation (MaskCLIP, chapter 08) as soft class
  maps for pixel-wise distillation.

:func:`freeze` makes the teacher a constant (``requires_grad=False``, eval mode); every function
here also runs under ``torch.no_grad``, so a student's loss can never send a gradient to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlm_course.evaluation.box_ap import check_boxes
from vlm_course.evaluation.detection import crop_regions
from vlm_course.evaluation.zeroshot import eval_mode

__all__ = ["freeze", "crop_embeddings", "dense_teacher_logits"]


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Put ``model`` in eval mode with every parameter's ``requires_grad`` False; return it.

    Raises TypeError when ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (the teacher VLM), got "
                        f"{type(model).__name__}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _check_images(images) -> None:
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 \
            or not images.is_floating_point():
        raise ValueError(f"images must be a float (B, 3, H, W) tensor, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} "
                         f"{tuple(getattr(images, 'shape', ()))}")


def _check_box_list(images: torch.Tensor, boxes) -> list[torch.Tensor]:
    if isinstance(boxes, torch.Tensor) or not isinstance(boxes, Sequence) \
            or len(boxes) != images.shape[0]:
        raise ValueError(f"boxes must be a list with one (n_b, 4) tensor per image "
                         f"({images.shape[0]}), got {type(boxes).__name__} of length "
                         f"{len(boxes) if hasattr(boxes, '__len__') else '?'}")
    return [check_boxes(f"boxes[{b}]", bx).float() for b, bx in enumerate(boxes)]


@torch.no_grad()
def crop_embeddings(teacher, images: torch.Tensor, boxes: Sequence[torch.Tensor], *,
                    context: int = 2, batch_size: int = 256) -> torch.Tensor:
    """(n, D) float32 CPU teacher embeddings of every box's crop: the ViLD-image targets.

    images: (B, 3, H, W) float in [0, 1]; boxes: B tensors (n_b, 4) xyxy pixels; n = sum n_b, in
    order (image 0's boxes first).  Row i is ``teacher.encode_image(crop_i)`` (L2-normalised, as
    the VLM interface returns it), where ``crop_i`` is the image with everything outside box i
    (grown by ``context`` pixels) painted in the background colour — exactly chapter 08's crop.
    Raises ValueError for images that are not (B, 3, H, W) float, a box list of the wrong length
    or malformed boxes.
    """
    _check_images(images)
    boxes = _check_box_list(images, boxes)
    crops = crop_regions(images, boxes, context)                       # (n, 3, H, W)
    with eval_mode(teacher):
        if crops.shape[0] == 0:                       # no box: (0, D), D read off one image
            return teacher.encode_image(images[:1]).float().cpu()[:0]
        return torch.cat([teacher.encode_image(crops[i:i + batch_size]).float().cpu()
                          for i in range(0, crops.shape[0], batch_size)])


@torch.no_grad()
def dense_teacher_logits(segmenter, images: torch.Tensor, scale: float | None = None,
                         batch_size: int = 256) -> torch.Tensor:
    """(B, C, H, W) float32 soft class maps of a chapter-08 ``ZeroShotSegmenter``: its cosine
    similarities times ``scale`` (default the VLM's inverse temperature ``exp(logit_scale)``),
    i.e. the logits a student distils pixel by pixel.

    images: (B, 3, H, W) float in [0, 1].  Channel 0 is the background when the segmenter has a
    background class, channel ``1 + k`` the class ``k``.  Raises ValueError for bad images or a
    scale that is not a finite number > 0.
    """
    _check_images(images)
    scale = segmenter.classes.scale if scale is None else scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not 0.0 < float(scale) < float("inf"):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    return torch.cat([segmenter.logits(images[i:i + batch_size]) * float(scale)
                      for i in range(0, images.shape[0], batch_size)])
