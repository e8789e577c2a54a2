"""Open-vocabulary segmentation distillation on ShapeWorld: data, training, evaluation.

Chapter 11.  Same base/novel split as the detector (:class:`OpenVocabSplit`): the student sees
masks of the base shapes only.  The teacher's pseudo-labels are chapter 08's zero-shot MaskCLIP
maps over the background and *all* shape names, sharpened as in chapter 08's exercise 6: in each
image only the background and the shapes the VLM's image-level classifier ranks in its top
``keep_top`` stay possible (the dense features localise, the global embedding names).  mIoU is
:func:`vlm_course.evaluation.metrics.mean_iou` over background + every shape, reported for the
base and the novel shapes separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlm_course.evaluation.classifier import ZeroShotClassifier
from vlm_course.evaluation.metrics import mean_iou
from vlm_course.evaluation.segmentation import ZeroShotSegmenter
from vlm_course.evaluation.zeroshot import shapeworld_prompts

from .segmenter import DenseStudent, SegmenterConfig, segmenter_loss
from .shapeworld import OpenVocabSplit, scenes
from .teacher import dense_teacher_logits

__all__ = ["SegmentationData", "teacher_segmenter", "pseudo_logits", "segmentation_data",
           "PixelBatches", "train_segmenter", "split_miou", "evaluate_segmenter"]


def teacher_segmenter(teacher, world_cfg) -> ZeroShotSegmenter:
    """Chapter 08's MaskCLIP segmenter of the teacher over background + the world's shapes."""
    return ZeroShotSegmenter(teacher, *shapeworld_prompts(world_cfg, "shape"))


@torch.no_grad()
def pseudo_logits(teacher, world_cfg, images: torch.Tensor, keep_top: int = 1) -> torch.Tensor:
    """(B, 1 + S, H, W) teacher logits: MaskCLIP maps times the VLM's scale, with every shape
    outside the image-level top ``keep_top`` masked to -inf (``keep_top = S`` keeps all).
    Raises ValueError for ``keep_top`` outside [1, S]."""
    S = len(world_cfg.shapes)
    if isinstance(keep_top, bool) or not isinstance(keep_top, int) or not 1 <= keep_top <= S:
        raise ValueError(f"keep_top must be an int in [1, {S}], got {keep_top!r}")
    seg = teacher_segmenter(teacher, world_cfg)
    logits = dense_teacher_logits(seg, images)                             # (B, 1 + S, H, W)
    clf = ZeroShotClassifier(teacher, *shapeworld_prompts(world_cfg, "shape"))
    top = clf.logits(images).topk(keep_top, dim=1).indices                 # (B, keep_top)
    allow = torch.zeros(images.shape[0], 1 + S, dtype=torch.bool)
    allow[:, 0] = True
    allow.scatter_(1, top + 1, True)
    return logits.masked_fill(~allow[:, :, None, None], float("-inf"))


@dataclass
class SegmentationData:
    """``images`` (N, 3, H, W); ``labels`` (N, H, W) int64: 1 + shape id on base objects, -1
    elsewhere; ``teacher`` (N, 1 + S, H, W) pseudo-label logits; ``text`` (1 + S, D) background
    + shape embeddings."""

    images: torch.Tensor
    labels: torch.Tensor
    teacher: torch.Tensor
    text: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


@torch.no_grad()
def segmentation_data(teacher, world_cfg, split: OpenVocabSplit, n: int = 512, seed: int = 0,
                      keep_top: int = 1) -> SegmentationData:
    """Training data for the student segmenter from ``n`` train scenes (see
    :class:`SegmentationData`): base masks and the teacher's pseudo-label logits."""
    batch = scenes(world_cfg, "train", n, seed)
    sem = batch.semantic_masks                                             # 0 bg, 1 + shape
    base = torch.zeros(1 + len(world_cfg.shapes), dtype=torch.bool)
    base[[1 + i for i in split.base_ids]] = True
    labels = torch.where(base[sem], sem, torch.full_like(sem, -1))
    teacher_logits = pseudo_logits(teacher, world_cfg, batch.images, keep_top)
    text = teacher_segmenter(teacher, world_cfg).text
    return SegmentationData(batch.images, labels, teacher_logits, text)


class PixelBatches:
    """``source(step, rank, world_size)`` -> a :func:`segmenter_loss` batch of ``batch_size``
    images drawn (seeded per step) from a :class:`SegmentationData`."""

    def __init__(self, data: SegmentationData, batch_size: int = 32, *, seed: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step * world_size + rank)
        idx = torch.randint(0, len(self.data), (self.batch_size,), generator=g)
        d = self.data
        return {"images": d.images[idx], "labels": d.labels[idx], "teacher": d.teacher[idx],
                "text": d.text}


def train_segmenter(data: SegmentationData, *, pseudo_labels: bool = True, kd_weight: float = 0.0,
                    temperature: float = 1.0, steps: int = 300, batch_size: int = 16,
                    lr: float = 5e-3, seed: int = 0, config: SegmenterConfig | None = None,
                    desc: str = "segmenter"):
    """Train a :class:`DenseStudent` with :func:`segmenter_loss`; returns ``(model, history)``.
    ``pseudo_labels=False``: base masks only; ``True``: the teacher's pseudo-labels elsewhere
    (and ``kd_weight`` x its soft maps)."""
    from vlm_course.settings import seed_everything
    from vlm_course.training.loop import TrainConfig, train

    seed_everything(seed)
    model = DenseStudent(config or SegmenterConfig(embed_dim=data.text.shape[1],
                                                   channels=(16, 32, 32, 32)))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=1e-4,
                      warmup_steps=max(1, steps // 20), seed=seed, checkpoint_every=steps)
    step = lambda m, b: segmenter_loss(m, b, pseudo_labels=pseudo_labels,  # noqa: E731
                                       kd_weight=kd_weight, temperature=temperature)
    history = train(model, PixelBatches(data, batch_size, seed=seed), step, cfg, desc=desc)
    return model.eval(), history


def split_miou(result: dict, split: OpenVocabSplit) -> dict:
    """``mean_iou``'s result plus ``miou_base`` / ``miou_novel`` (mean IoU over the base /
    novel shapes, NaN-free classes only) and ``iou_background``."""
    iou = result["iou"]

    def over(ids):
        vals = [float(iou[1 + i]) for i in ids if not torch.isnan(iou[1 + i])]
        return sum(vals) / len(vals) if vals else float("nan")

    return {**result, "miou_base": over(split.base_ids), "miou_novel": over(split.novel_ids),
            "iou_background": float(iou[0])}


def evaluate_segmenter(predict, images: torch.Tensor, masks: torch.Tensor,
                       split: OpenVocabSplit) -> dict:
    """mIoU of ``predict(images) -> (B, H, W)`` class ids (0 background, 1 + shape id) against
    ``masks`` (B, H, W) semantic masks, over all classes and per split (:func:`split_miou`)."""
    pred = predict(images)
    return split_miou(mean_iou(pred, masks, 1 + len(split.shapes)), split)
