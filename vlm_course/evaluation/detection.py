"""Zero-shot object detection: class-agnostic proposals named by text embeddings (chapter 08).

The recipe of ViLD (Gu et al. 2022) and OWL-ViT (Minderer et al. 2022), without their training:

1. class-agnostic **proposals** (:mod:`vlm_course.evaluation.proposals`: connected regions);
2. one **embedding per proposal**, either
   * ``region="crop"`` — ViLD's image branch: the image with everything outside the (slightly
     enlarged) box painted in the background colour, encoded by the image tower like any image.
     The object keeps its place and size, so the crop looks like the scenes the VLM was trained
     on; the cost is one forward pass per proposal;
   * ``region="roi"`` — the MaskCLIP dense features (:mod:`vlm_course.evaluation.dense`) averaged
     inside the box with ``torchvision.ops.roi_align``: one forward pass per image;
3. class **scores**: softmax over the K classes of ``exp(logit_scale) * cos(region, class)``
   (prompt-ensemble class embeddings); each proposal yields its ``top_k`` classes as detections;
4. per-class non-maximum suppression (``torchvision.ops.batched_nms``).

Detections are ``{"boxes": (n, 4) float32 xyxy, "scores": (n,), "labels": (n,) int64}`` per
image, the format of :func:`vlm_course.evaluation.box_ap.coco_map` and torchmetrics.  Because the
classes are only text, any list of names is a valid detector vocabulary — including colour–shape
pairs the VLM never saw together in training (the open-vocabulary split, :meth:`evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .box_ap import check_boxes, coco_map, mean_ap_over
from .classifier import ZeroShotClassifier
from .dense import dense_features
from .proposals import background_colour, propose_boxes
from .zeroshot import eval_mode

__all__ = ["REGIONS", "crop_regions", "ZeroShotDetector"]

REGIONS = ("crop", "roi")


def crop_regions(images: torch.Tensor, boxes: Sequence[torch.Tensor],
                 context: int = 2) -> torch.Tensor:
    """(n, C, H, W): one image per box, everything outside the box (grown by ``context`` pixels
    on each side) replaced by the image's background colour (:func:`background_colour`).

    images: (B, C, H, W) float; boxes: B tensors (n_b, 4) xyxy pixels; n = sum of n_b, in order.
    """
    B, C, H, W = images.shape
    bg = background_colour(images)                                  # (B, C)
    ys = torch.arange(H, dtype=torch.float32)[:, None]
    xs = torch.arange(W, dtype=torch.float32)[None, :]
    out = []
    for b, bx in enumerate(boxes):
        for x1, y1, x2, y2 in bx.float().tolist():
            inside = (xs >= x1 - context) & (xs < x2 + context) \
                & (ys >= y1 - context) & (ys < y2 + context)        # (H, W)
            out.append(torch.where(inside, images[b], bg[b][:, None, None]))
    return torch.stack(out) if out else images.new_zeros(0, C, H, W)


class ZeroShotDetector:
    """Proposals + VLM region classification + NMS (see the module docstring).

    Args:
        model: a VLM (for ``region="roi"`` its image tower needs a dense hook).
        classnames, templates, strict: the text side, as for
            :class:`~vlm_course.evaluation.classifier.ZeroShotClassifier`.
        region: ``"crop"`` or ``"roi"``.
        proposer: ``images -> list of (n_b, 4) xyxy boxes`` (default :func:`propose_boxes`).
        top_k: detections per proposal (its k most likely classes), 1 <= top_k <= K.
        nms_iou: IoU above which a lower-scored box of the same class is suppressed.
        context: pixels of context around each box for ``region="crop"``.
    Raises ValueError for an unknown ``region``, ``top_k`` out of range, ``nms_iou`` outside
    (0, 1], and the classifier's errors (empty class list, unknown words in strict mode, ...).
    """

    def __init__(self, model, classnames: Sequence[str], templates: Sequence[str] = ("a {}",),
                 *, region: str = "crop", proposer: Callable | None = None, top_k: int = 1,
                 nms_iou: float = 0.5, context: int = 2, strict: bool = False):
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
        self.classes = ZeroShotClassifier(model, classnames, templates, strict=strict)
        K = self.classes.num_classes
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= K:
            raise ValueError(f"top_k must be an int in [1, K={K}], got {top_k!r}")
        if not 0.0 < float(nms_iou) <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou!r}")
        self.model, self.region, self.top_k = model, region, top_k
        self.nms_iou, self.context = float(nms_iou), int(context)
        self.proposer = proposer if proposer is not None else propose_boxes

    @torch.no_grad()
    def region_embeddings(self, images: torch.Tensor,
                          boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n, D) float CPU embeddings of all boxes (images in order, then boxes in order)."""
        if len(boxes) != images.shape[0]:
            raise ValueError(f"boxes must be a list with one (n_b, 4) tensor per image "
                             f"({images.shape[0]}), got {len(boxes)}")
        boxes = [check_boxes(f"boxes[{b}]", bx).float() for b, bx in enumerate(boxes)]
        if self.region == "crop":
            return self.classes.encode(crop_regions(images, boxes, self.context))
        from torchvision.ops import roi_align

        with eval_mode(self.model):
            feats = dense_features(self.model, images, "maskclip").float().cpu()  # (B, D, h, w)
        scale = feats.shape[-1] / images.shape[-1]
        pooled = roi_align(feats, boxes, output_size=(2, 2), spatial_scale=scale,
                           sampling_ratio=2, aligned=True)                     # (n, D, 2, 2)
        return pooled.mean(dim=(2, 3))

    @torch.no_grad()
    def detect(self, images: torch.Tensor, boxes: Sequence[torch.Tensor] | None = None
               ) -> list[dict[str, torch.Tensor]]:
        """Detections for (B, 3, H, W) ``images``: B dicts with ``boxes`` (n, 4) float32 xyxy,
        ``scores`` (n,) float32 class probabilities, ``labels`` (n,) int64 class ids.

        ``boxes``: proposals to use instead of ``self.proposer(images)`` (B tensors (n_b, 4)).
        """
        from torchvision.ops import batched_nms

        if not torch.is_tensor(images) or images.ndim != 4:
            raise ValueError(f"images must be a (B, 3, H, W) tensor, got "
                             f"{tuple(getattr(images, 'shape', ()))}")
        proposals = self.proposer(images) if boxes is None else list(boxes)
        emb = self.region_embeddings(images, proposals)                          # (n, D)
        probs = self.classes.logits(image_emb=emb).softmax(dim=1) if len(emb) else emb
        out, start = [], 0
        for bx in proposals:
            n = len(bx)
            p = probs[start:start + n]
            start += n
            if n == 0:
                out.append({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                            "labels": torch.zeros(0, dtype=torch.long)})
                continue
            scores, labels = p.topk(self.top_k, dim=1)                             # (n, k)
            det_boxes = bx.float().repeat_interleave(self.top_k, dim=0)            # (n k, 4)
            scores, labels = scores.reshape(-1), labels.reshape(-1)
            keep = batched_nms(det_boxes, scores, labels, self.nms_iou)
            out.append({"boxes": det_boxes[keep], "scores": scores[keep],
                        "labels": labels[keep]})
        return out

    def evaluate(self, images: torch.Tensor, targets: Sequence[dict],
                 novel: Sequence[int] = (), batch_size: int = 128) -> dict:
        """COCO box AP of :meth:`detect` on ``images`` against ``targets`` (one dict per image,
        ``boxes`` (m, 4) xyxy and ``labels`` (m,)).

        Returns :func:`~vlm_course.evaluation.box_ap.coco_map`'s result plus ``"map_novel"`` and
        ``"map_base"``: mAP over the class ids in ``novel`` (e.g. held-out compositions) and
        over the other classes with ground truth, and ``"detections"``.
        """
        if len(targets) != images.shape[0]:
            raise ValueError(f"targets must have one dict per image ({images.shape[0]}), got "
                             f"{len(targets)}")
        dets = [d for i in range(0, images.shape[0], batch_size)
                for d in self.detect(images[i:i + batch_size])]
        result = coco_map(dets, targets)
        novel = {int(c) for c in novel}
        base = [int(c) for c in result["classes"].tolist() if int(c) not in novel]
        result["map_novel"] = mean_ap_over(result, sorted(novel))
        result["map_base"] = mean_ap_over(result, base)
        result["detections"] = dets
        return result
