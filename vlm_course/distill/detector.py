"""A small open-vocabulary detector distilled from a VLM: ViLD-text + ViLD-image (chapter 11).

ViLD (Gu et al. 2022) turns a detector's classifier into text: each region proposal gets an
embedding, which is compared with the VLM's text embeddings of the class names.

* **ViLD-text**: trained with cross-entropy on the *base* classes only, against their text
  embeddings plus a learned background embedding.  Proposals that match no annotated box are
  background — including objects of the *novel* classes, which nobody annotated;
* **ViLD-image**: the region embedding is also pulled (L1) towards the VLM's image embedding of
  the region's crop (:func:`vlm_course.distill.teacher.crop_embeddings`).  This needs no label,
  so it teaches the student about every object, novel ones included.

At test time any list of class names is the vocabulary: the text embeddings of base *and* novel
names.  :class:`RegionDetector` is a small CNN (stride 4) whose feature map is pooled inside each
proposal by ``torchvision.ops.roi_align``; an MLP gives the region's unit embedding and a
class-agnostic box refinement (the box head, trained on base boxes only).  Proposals come from a
class-agnostic proposer (chapter 08's connected regions play ViLD's region proposal network).

Shapes: images (B, 3, H, W) float in [0, 1]; boxes a list of B tensors (n_b, 4) xyxy pixels;
region tensors are (n, ...) with n = sum n_b, images in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .losses import embedding_distill_loss

__all__ = ["DetectorConfig", "RegionDetector", "detector_loss", "detect", "box_deltas",
           "apply_deltas"]


@dataclass
class DetectorConfig:
    """The student detector: ``channels`` of the conv stages (the first two halve the size),
    ``roi_size`` the pooled grid per region, ``hidden`` the region MLP width, ``embed_dim`` the
    VLM's joint-space width, ``logit_scale`` the fixed inverse temperature of region-text cosines
    (plain, not log-space: ViLD uses 1 / 0.01)."""

    embed_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 48)
    roi_size: int = 4
    hidden: int = 128
    logit_scale: float = 20.0

    def __post_init__(self) -> None:
        for name in ("embed_dim", "roi_size", "hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DetectorConfig.{name} must be an int >= 1, got {v!r}")
        if len(self.channels) < 2 or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"DetectorConfig.channels must be >= 2 positive ints, got "
                             f"{self.channels!r}")
        if not 0.0 < float(self.logit_scale) < float("inf"):
            raise ValueError(f"DetectorConfig.logit_scale must be > 0, got {self.logit_scale!r}")

    @classmethod
    def tiny(cls, embed_dim: int = 64) -> DetectorConfig:
        return cls(embed_dim=embed_dim)


def conv_stages(channels: Sequence[int]) -> nn.Sequential:
    """3x3 conv + ReLU stages; the first two have stride 2 (overall stride 4)."""
    layers, c_in = [], 3
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(c_in, int(c), 3, stride=2 if i < 2 else 1, padding=1), nn.ReLU()]
        c_in = int(c)
    return nn.Sequential(*layers)


def box_deltas(boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(n, 4) offsets of ``targets`` from ``boxes`` (both (n, 4) xyxy), in units of the box's
    width and height: ``(t - b) / (w, h, w, h)``."""
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0).repeat(1, 2)        # (n, 4)
    return (targets - boxes) / wh


def apply_deltas(boxes: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`box_deltas`: ``boxes + deltas * (w, h, w, h)`` (n, 4) xyxy."""
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0).repeat(1, 2)
    return boxes + deltas * wh


class RegionDetector(nn.Module):
    """The student: conv backbone -> RoIAlign per proposal -> MLP -> unit embedding + box deltas.

    Stages: :meth:`forward_features` (B, C, H/4, W/4); :meth:`region_features` (n, hidden);
    :meth:`forward_head` -> ``(emb (n, D) unit rows, deltas (n, 4))``;
    :meth:`class_logits` -> (n, 1 + K) scaled cosines with [background, K class texts].
    ``forward(images, boxes)`` runs the first three.
    """

    stride = 4

    def __init__(self, config: DetectorConfig | None = None):
        super().__init__()
        self.config = config = config or DetectorConfig()
        self.backbone = conv_stages(config.channels)
        r, c = config.roi_size, int(config.channels[-1])
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c * r * r, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, config.hidden), nn.ReLU())
        self.embed = nn.Linear(config.hidden, config.embed_dim)
        self.box_head = nn.Linear(config.hidden, 4)
        nn.init.zeros_(self.box_head.weight)
        nn.init.zeros_(self.box_head.bias)
        # ViLD's learned background embedding (the "none of the classes" row of the classifier)
        self.background = nn.Parameter(torch.randn(config.embed_dim) * 0.1)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float -> (B, C, H/4, W/4) feature map.  Raises ValueError for a wrong
        image shape."""
        if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 \
                or not images.is_floating_point():
            raise ValueError(f"images must be a float (B, 3, H, W) tensor, got "
                             f"{getattr(images, 'dtype', type(images).__name__)} "
                             f"{tuple(getattr(images, 'shape', ()))}")
        return self.backbone(images)

    def region_features(self, feats: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n, hidden): ``roi_align`` of the (B, C, h, w) map inside each box, then the MLP."""
        from torchvision.ops import roi_align

        if isinstance(boxes, torch.Tensor) or len(boxes) != feats.shape[0]:
            raise ValueError(f"boxes must be a list with one (n_b, 4) tensor per image "
                             f"({feats.shape[0]}), got {type(boxes).__name__}")
        boxes = [b.to(feats.dtype) for b in boxes]
        r = self.config.roi_size
        pooled = roi_align(feats, boxes, output_size=(r, r), spatial_scale=1.0 / self.stride,
                           sampling_ratio=2, aligned=True)                    # (n, C, r, r)
        return self.mlp(pooled)

    def forward_head(self, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, hidden) -> (unit embeddings (n, D), box deltas (n, 4))."""
        return F.normalize(self.embed(region), dim=-1), self.box_head(region)

    def forward(self, images: torch.Tensor, boxes: Sequence[torch.Tensor]):
        return self.forward_head(self.region_features(self.forward_features(images), boxes))

    def class_logits(self, emb: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(n, 1 + K) = ``logit_scale * cos(emb, [background; text])``; text (K, D) unit rows
        (the VLM's class embeddings).  Column 0 is the background.  Raises ValueError when
        ``text`` is not (K, D)."""
        if not torch.is_tensor(text) or text.ndim != 2 or text.shape[1] != emb.shape[1]:
            raise ValueError(f"text must be (K, D={emb.shape[1]}) class embeddings, got "
                             f"{tuple(getattr(text, 'shape', ()))}")
        rows = torch.cat([F.normalize(self.background, dim=0)[None], F.normalize(text, dim=1)])
        return self.config.logit_scale * emb @ rows.T


def detector_loss(model: RegionDetector, batch: dict, *, image_weight: float = 1.0,
                  box_weight: float = 1.0, distance: str = "l1") -> tuple[torch.Tensor, dict]:
    """ViLD's training loss on one batch (chapter 11): text + ``image_weight`` * image + box.

    batch: ``images`` (B, 3, H, W); ``boxes`` B tensors (n_b, 4) proposals; ``labels`` (n,) int64
    (0 = background — unannotated objects included —, 1 + k = base class k); ``text`` (K_base, D)
    base-class text embeddings; ``teacher`` (n, D) the VLM's crop embeddings of the proposals
    (needed when ``image_weight > 0``); ``box_targets`` (n, 4) xyxy and ``box_valid`` (n,) bool
    (proposals matched to an annotated base box).
    ``distance``: of the image term, ``"l1"`` (ViLD) or ``"cosine"``
    (:func:`~vlm_course.distill.losses.embedding_distill_loss`).
    Returns ``(loss, {"text", "image", "box"})``.  ``image_weight = 0`` is ViLD-text alone, the
    detector trained on base labels only.
    Raises ValueError for a negative weight or a batch without the keys it needs.
    """
    for name, w in (("image_weight", image_weight), ("box_weight", box_weight)):
        if not float(w) >= 0.0:
            raise ValueError(f"{name} must be >= 0, got {w!r}")
    need = ["images", "boxes", "labels", "text"] + (["teacher"] if image_weight > 0 else [])
    missing = [k for k in need if k not in batch]
    if missing:
        raise ValueError(f"batch must hold {need}, missing {missing}")
    emb, deltas = model(batch["images"], batch["boxes"])                   # (n, D), (n, 4)
    text_loss = F.cross_entropy(model.class_logits(emb, batch["text"]), batch["labels"])
    image_loss = embedding_distill_loss(emb, batch["teacher"], distance) if image_weight > 0 \
        else emb.sum() * 0.0
    box_loss = emb.sum() * 0.0
    if box_weight > 0 and "box_valid" in batch and bool(batch["box_valid"].any()):
        valid = batch["box_valid"]
        proposals = torch.cat(list(batch["boxes"]))
        target = box_deltas(proposals[valid], batch["box_targets"][valid])
        box_loss = F.smooth_l1_loss(deltas[valid], target, beta=0.1)
    loss = text_loss + image_weight * image_loss + box_weight * box_loss
    return loss, {"text": float(text_loss.detach()), "image": float(image_loss.detach()),
                  "box": float(box_loss.detach())}


@torch.no_grad()
def detect(model: RegionDetector, images: torch.Tensor, proposals: Sequence[torch.Tensor],
           text: torch.Tensor, *, nms_iou: float = 0.5, refine: bool = True
           ) -> list[dict[str, torch.Tensor]]:
    """Open-vocabulary detections: B dicts ``boxes`` (n, 4) float32 xyxy, ``scores`` (n,),
    ``labels`` (n,) int64 class ids into ``text``'s rows.

    text: (K, D) class embeddings — any vocabulary (base and novel names).  Each proposal is
    refined by the box head (``refine``) and labelled with its most likely non-background class;
    the score is that class's probability in the softmax over [background, K classes];
    per-class NMS at ``nms_iou``.  The model runs in eval mode.
    """
    from torchvision.ops import batched_nms

    was = model.training
    model.eval()
    emb, deltas = model(images, proposals)
    model.train(was)
    probs = model.class_logits(emb, text).softmax(dim=1)[:, 1:]             # (n, K)
    scores, labels = probs.max(dim=1)                                       # (n,)
    counts = [len(b) for b in proposals]
    image_id = torch.repeat_interleave(torch.arange(len(counts)),
                                       torch.tensor(counts, dtype=torch.long))
    boxes = torch.cat([b.float() for b in proposals]) if counts else probs.new_zeros(0, 4)
    if refine:
        boxes = apply_deltas(boxes, deltas)
    H, W = images.shape[-2:]
    x1, y1 = boxes[:, 0].clamp(0, W), boxes[:, 1].clamp(0, H)
    boxes = torch.stack([x1, y1, torch.maximum(boxes[:, 2].clamp(0, W), x1),
                         torch.maximum(boxes[:, 3].clamp(0, H), y1)], dim=1)
    # one NMS call for the whole batch: a box only competes with its own image and class
    keep = batched_nms(boxes, scores, image_id * text.shape[0] + labels, nms_iou)
    keep = keep[torch.argsort(image_id[keep], stable=True)]
    out = []
    for b in range(len(counts)):
        k = keep[image_id[keep] == b]
        out.append({"boxes": boxes[k], "scores": scores[k], "labels": labels[k]})
    return out
