"""Open-vocabulary distillation on ShapeWorld: the base/novel split, data, training, evaluation.

Chapter 11.  The categories are the world's shapes.  The student sees annotations (boxes,
masks) of the **base** shapes only; the **novel** shapes appear in its training images but are
never annotated — as in ViLD's LVIS split (Gu et al. 2022), where the rare categories are
removed from the training labels.  The teacher (the shipped CLIP of chapter 04) knows every
shape name.  Evaluation uses chapter 08's metrics on all shapes and reports base and novel
separately: COCO box AP (:func:`vlm_course.evaluation.box_ap.coco_map`) and mIoU
(:func:`vlm_course.evaluation.metrics.mean_iou`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlm_course.evaluation.box_ap import coco_map, mean_ap_over
from vlm_course.evaluation.classifier import ZeroShotClassifier
from vlm_course.evaluation.proposals import propose_boxes
from vlm_course.evaluation.zeroshot import shapeworld_prompts

from .detector import DetectorConfig, RegionDetector, detect, detector_loss
from .teacher import crop_embeddings

__all__ = ["NOVEL_SHAPES", "OpenVocabSplit", "scenes", "shape_targets", "class_text",
           "DetectionData", "detection_data", "RegionBatches", "train_detector",
           "evaluate_detector"]

#: The shapes never annotated for the student (the other four are the base classes).
NOVEL_SHAPES: tuple[str, ...] = ("diamond", "star", "heart", "ring")


@dataclass(frozen=True)
class OpenVocabSplit:
    """Shape ids of the base (annotated) and novel (never annotated) classes of a world.

    Raises ValueError when a novel name is not a shape of the world, or nothing is left as base.
    """

    shapes: tuple[str, ...]
    novel: tuple[str, ...] = NOVEL_SHAPES

    def __post_init__(self) -> None:
        unknown = [s for s in self.novel if s not in self.shapes]
        if unknown or not self.novel or len(set(self.novel)) >= len(self.shapes):
            raise ValueError(f"novel must be distinct shapes of {self.shapes} leaving at least "
                             f"one base shape, got {self.novel!r}")

    @property
    def novel_ids(self) -> tuple[int, ...]:
        return tuple(self.shapes.index(s) for s in self.novel)

    @property
    def base_ids(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.shapes) if s not in self.novel)


def scenes(world_cfg, split: str, n: int, seed: int = 0):
    """A ``SceneBatch`` of ``n`` scenes of ``split`` at seeded random indices (with masks)."""
    from vlm_course.world import ShapeWorld

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    idx = np.random.default_rng(seed).choice(100_000, size=n, replace=False)
    return ShapeWorld(world_cfg).batch(split, sorted(int(i) for i in idx))


def shape_targets(batch) -> list[dict[str, torch.Tensor]]:
    """Detection ground truth by shape: per scene ``boxes`` (m, 4) float32, ``labels`` (m,)
    int64 shape ids."""
    return [{"boxes": b.float(), "labels": torch.tensor([o["shape_id"] for o in objs],
                                                        dtype=torch.long)}
            for b, objs in zip(batch.boxes, batch.objects, strict=True)]


def class_text(teacher, world_cfg) -> torch.Tensor:
    """(S, D) unit prompt-ensemble text embeddings of the world's shapes (chapter 08's shape
    prompts), in the order of ``world_cfg.shapes``."""
    return ZeroShotClassifier(teacher, *shapeworld_prompts(world_cfg, "shape")).weights


@dataclass
class DetectionData:
    """Training regions of a set of scenes: ``images`` (N, 3, H, W); ``boxes`` N tensors
    (n_b, 4) (proposals, then one background box); ``labels`` (n,) 0 = background, 1 + j = the
    j-th base class; ``box_targets`` (n, 4) and ``box_valid`` (n,) (matched base box);
    ``teacher`` (n, D) the teacher's crop embeddings; ``text`` (K_base, D) base-class texts."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: torch.Tensor
    box_targets: torch.Tensor
    box_valid: torch.Tensor
    teacher: torch.Tensor
    text: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


def _background_box(rng: np.random.Generator, gt: torch.Tensor, size: int) -> list[float]:
    from torchvision.ops import box_iou

    for _ in range(50):
        w, h = rng.integers(6, 16, size=2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        box = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64)
        if len(gt) == 0 or float(box_iou(box, gt.double()).max()) < 0.05:
            return box[0].float().tolist()
    return [0.0, 0.0, 4.0, 4.0]


@torch.no_grad()
def detection_data(teacher, world_cfg, split: OpenVocabSplit, n: int = 512, seed: int = 0,
                   match_iou: float = 0.5) -> DetectionData:
    """Training regions for the student detector from ``n`` train scenes (see
    :class:`DetectionData`).  Proposals are chapter 08's class-agnostic connected regions; a
    proposal is labelled with the base class of the annotated box it overlaps by at least
    ``match_iou``, else background — novel objects therefore count as background, as
    unannotated objects do in ViLD.  One random empty box per image adds plain background."""
    from torchvision.ops import box_iou

    batch = scenes(world_cfg, "train", n, seed)
    rng = np.random.default_rng(seed + 1)
    base = {s: j for j, s in enumerate(split.base_ids)}
    size = batch.images.shape[-1]
    boxes, labels, targets, valid = [], [], [], []
    for props, gt, objs in zip(propose_boxes(batch.images), batch.boxes, batch.objects,
                               strict=True):
        keep = [k for k, o in enumerate(objs) if o["shape_id"] in base]   # annotated boxes
        gt_base = gt[keep].float()
        bx = torch.cat([props, torch.tensor([_background_box(rng, gt, size)])])
        lab = torch.zeros(len(bx), dtype=torch.long)
        tgt = bx.clone()
        ok = torch.zeros(len(bx), dtype=torch.bool)
        if len(keep) and len(props):
            ious = box_iou(props.double(), gt_base.double())                  # (n_b, m_base)
            best, arg = ious.max(dim=1)
            for r in range(len(props)):
                if float(best[r]) >= match_iou:
                    lab[r] = 1 + base[objs[keep[int(arg[r])]]["shape_id"]]
                    tgt[r], ok[r] = gt_base[int(arg[r])], True
        boxes.append(bx)
        labels.append(lab)
        targets.append(tgt)
        valid.append(ok)
    teacher_emb = crop_embeddings(teacher, batch.images, boxes)
    text = class_text(teacher, world_cfg)[list(split.base_ids)]
    return DetectionData(batch.images, boxes, torch.cat(labels), torch.cat(targets),
                         torch.cat(valid), teacher_emb, text)


class RegionBatches:
    """``source(step, rank, world_size)`` -> a :func:`detector_loss` batch of ``batch_size``
    images of a :class:`DetectionData` (a seeded draw per step), every box jittered by up to
    ``jitter`` pixels (so the box head learns to correct loose proposals)."""

    def __init__(self, data: DetectionData, batch_size: int = 32, *, seed: int = 0,
                 jitter: float = 3.0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.data, self.batch_size, self.seed, self.jitter = data, batch_size, seed, jitter
        counts = torch.tensor([len(b) for b in data.boxes])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step * world_size + rank)
        d = self.data
        idx = torch.randint(0, len(d), (self.batch_size,), generator=g).tolist()
        rows = torch.cat([torch.arange(int(self.offsets[i]), int(self.offsets[i + 1]))
                          for i in idx])
        size = d.images.shape[-1]
        boxes = []
        for i in idx:
            b = d.boxes[i] + (torch.rand(d.boxes[i].shape, generator=g) * 2 - 1) * self.jitter
            x1, y1 = b[:, 0].clamp(0, size - 2), b[:, 1].clamp(0, size - 2)
            boxes.append(torch.stack([x1, y1, torch.maximum(b[:, 2], x1 + 2).clamp(max=size),
                                      torch.maximum(b[:, 3], y1 + 2).clamp(max=size)], 1))
        return {"images": d.images[idx], "boxes": boxes, "labels": d.labels[rows],
                "box_targets": d.box_targets[rows], "box_valid": d.box_valid[rows],
                "teacher": d.teacher[rows], "text": d.text}


def train_detector(data: DetectionData, *, image_weight: float = 1.0, distance: str = "l1",
                   steps: int = 300, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                   config: DetectorConfig | None = None, desc: str = "detector"):
    """Train a :class:`RegionDetector` on ``data`` with the one training loop; returns
    ``(model in eval mode, history)``.  ``image_weight = 0``: base labels only (ViLD-text);
    ``> 0``: distilled from the teacher's crop embeddings as well (ViLD), with the L1 or
    ``"cosine"`` ``distance``."""
    from vlm_course.settings import seed_everything
    from vlm_course.training.loop import TrainConfig, train

    seed_everything(seed)
    model = RegionDetector(config or DetectorConfig(embed_dim=data.teacher.shape[1]))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=1e-4,
                      warmup_steps=max(1, steps // 20), seed=seed, checkpoint_every=steps)
    history = train(model, RegionBatches(data, batch_size, seed=seed),
                    lambda m, b: detector_loss(m, b, image_weight=image_weight, distance=distance),
                    cfg, desc=desc)
    return model.eval(), history


def evaluate_detector(model, images: torch.Tensor, targets: Sequence[dict],
                      text: torch.Tensor, split: OpenVocabSplit,
                      proposals: Sequence[torch.Tensor] | None = None) -> dict:
    """COCO box AP of :func:`detect` over all shapes (``text`` (S, D) in the world's order),
    with ``"map_base"`` / ``"map_novel"`` over the split's classes and the ``"detections"``."""
    proposals = propose_boxes(images) if proposals is None else proposals
    dets = detect(model, images, proposals, text)
    result = coco_map(dets, targets)
    result["map_base"] = mean_ap_over(result, split.base_ids)
    result["map_novel"] = mean_ap_over(result, split.novel_ids)
    result["detections"] = dets
    return result
