"""COCO-style box average precision (mAP@[.5:.95]) for zero-shot detection (chapter 08).

The survey's zero-shot detection tables (ViLD, Gu et al. 2022; OWL-ViT, Minderer et al. 2022)
report COCO's box AP, and for open-vocabulary detection the AP on the *novel* classes that the
detector never saw boxes for.  This module re-implements the COCO protocol (Lin et al. 2014) for
the default "all areas" setting, written for clarity; ``tests/test_box_ap.py`` checks it equals
torchmetrics' ``MeanAveragePrecision`` (pycocotools backend) on the same predictions.

The protocol, per class c and IoU threshold t:

1. in each image keep the class-c detections, sorted by score (stable: equal scores keep their
   order), at most ``max_dets`` of them;
2. match greedily in that order: a detection takes the still-unmatched ground-truth box with the
   highest IoU, if that IoU is >= t (among equal IoUs the later box wins, as in pycocotools);
   matched detections are true positives, the others false positives;
3. pool the detections of all images, sort by score (stable, images in order), accumulate
   precision and recall, make precision non-increasing from the right, and read it at the recall
   thresholds 0, 0.01, ..., 1 (0 past the highest recall reached); AP is their mean.

AP(c) averages over t = 0.50, 0.55, ..., 0.95; mAP averages over the classes that have at least one
ground-truth box (a class with predictions only is left out, as in COCO; a class with ground truth
but no prediction scores 0).

Inputs follow torchmetrics: one dict per image; ``predictions[i]`` has ``"boxes"`` (n, 4) float
``xyxy`` pixels, ``"scores"`` (n,) float, ``"labels"`` (n,) int; ``targets[i]`` has ``"boxes"``
(m, 4) and ``"labels"`` (m,).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["COCO_IOU_THRESHOLDS", "COCO_RECALL_THRESHOLDS", "coco_map", "mean_ap_over",
           "check_boxes"]

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
COCO_RECALL_THRESHOLDS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(101))


def check_boxes(name: str, boxes) -> torch.Tensor:
    """Validate (n, 4) ``xyxy`` boxes with ``x2 >= x1`` and ``y2 >= y1``; return them as float64.

    Raises TypeError for a non-tensor, ValueError naming ``name`` for a wrong shape, a non-finite
    value or an inverted box (x2 < x1 or y2 < y1).
    """
    if not torch.is_tensor(boxes):
        raise TypeError(f"{name} must be a (n, 4) tensor of xyxy boxes, got "
                        f"{type(boxes).__name__}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be (n, 4) xyxy boxes, got {tuple(boxes.shape)}")
    b = boxes.detach().double().cpu()
    if not torch.isfinite(b).all():
        raise ValueError(f"{name} must be finite, got {b[~torch.isfinite(b).all(1)][:3].tolist()}")
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(f"{name} must be xyxy with x2 >= x1 and y2 >= y1, got box {i} = "
                         f"{b[i].tolist()}")
    return b


def _check_images(name: str, items, keys: tuple[str, ...]) -> list[dict]:
    if isinstance(items, dict) or not isinstance(items, Sequence):
        raise TypeError(f"{name} must be a list with one dict per image, got "
                        f"{type(items).__name__}")
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict) or any(k not in d for k in keys):
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got "
                             f"{sorted(d) if isinstance(d, dict) else type(d).__name__}")
        boxes = check_boxes(f"{name}[{i}]['boxes']", d["boxes"])
        labels = torch.as_tensor(d["labels"]).reshape(-1).long().cpu()
        if labels.shape[0] != boxes.shape[0]:
            raise ValueError(f"{name}[{i}]['labels'] must have one label per box "
                             f"({boxes.shape[0]}), got {labels.shape[0]}")
        item = {"boxes": boxes, "labels": labels}
        if "scores" in keys:
            scores = torch.as_tensor(d["scores"]).reshape(-1).double().cpu()
            if scores.shape[0] != boxes.shape[0] or not torch.isfinite(scores).all():
                raise ValueError(f"{name}[{i}]['scores'] must be {boxes.shape[0]} finite "
                                 f"numbers, got {tuple(scores.shape)}")
            item["scores"] = scores
        out.append(item)
    return out


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) float64 IoU of xyxy boxes (0 where the union is empty)."""
    wh = (torch.minimum(a[:, None, 2:], b[None, :, 2:])
          - torch.maximum(a[:, None, :2], b[None, :, :2])).clamp(min=0)     # (n, m, 2)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(inter))


def _match(ious: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """(T, n) bool: is detection d (sorted by score) a true positive at threshold t."""
    T, (n, m) = len(thresholds), ious.shape
    tp = torch.zeros(T, n, dtype=torch.bool)
    table = ious.tolist()
    for ti, t in enumerate(thresholds.tolist()):
        taken = [False] * m
        for d in range(n):
            best, match = min(t, 1 - 1e-10), -1
            for g in range(m):
                if taken[g] or table[d][g] < best:
                    continue
                best, match = table[d][g], g
            if match >= 0:
                taken[match], tp[ti, d] = True, True
    return tp


def _precision_at_recall(tp: torch.Tensor, n_gt: int, rec: torch.Tensor) -> torch.Tensor:
    """(R,) interpolated precision at recall thresholds ``rec`` from (n,) sorted TP flags."""
    tps = tp.double().cumsum(0)
    fps = (~tp).double().cumsum(0)
    recall = tps / n_gt
    precision = tps / (tps + fps + torch.finfo(torch.float64).eps)
    precision = precision.flip(0).cummax(0).values.flip(0)      # non-increasing from the right
    idx = torch.searchsorted(recall, rec, side="left")          # first point reaching each recall
    out = torch.zeros(len(rec), dtype=torch.float64)
    ok = idx < len(recall)
    out[ok] = precision[idx[ok]]
    return out


def coco_map(predictions: Sequence[dict], targets: Sequence[dict], *, max_dets: int = 100,
             iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
             rec_thresholds: Sequence[float] = COCO_RECALL_THRESHOLDS) -> dict:
    """COCO box AP of ``predictions`` against ``targets`` (see the module docstring).

    Returns ``{"map": float (mAP@[.5:.95]), "map_50": float, "map_75": float (NaN without those
    thresholds), "classes": (C,) int64 classes with ground truth, "ap": (T, C) float64 AP per
    threshold and class, "ap_per_class": {class: AP@[.5:.95]}}``; all NaN when no image has a
    ground-truth box.
    Raises ValueError for boxes with x2 < x1 or y2 < y1 (naming the image and the box), a label
    count that differs from the box count, non-finite scores, or ``len(predictions) !=
    len(targets)``; TypeError when the inputs are not lists of dicts of tensors.
    """
    preds = _check_images("predictions", predictions, ("boxes", "scores", "labels"))
    gts = _check_images("targets", targets, ("boxes", "labels"))
    if len(preds) != len(gts):
        raise ValueError(f"predictions and targets must have one entry per image, got "
                         f"{len(preds)} and {len(gts)}")
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be an int >= 1, got {max_dets!r}")
    thr = torch.tensor([float(t) for t in iou_thresholds], dtype=torch.float64)
    rec = torch.tensor([float(r) for r in rec_thresholds], dtype=torch.float64)
    classes = sorted({int(c) for g in gts for c in g["labels"].tolist()})
    # per class: (T, n_i) TP flags and (n_i,) scores of every image holding that class
    flags: dict[int, list] = {c: [] for c in classes}
    scores: dict[int, list] = {c: [] for c in classes}
    n_gt = dict.fromkeys(classes, 0)
    for p, g in zip(preds, gts, strict=True):
        ious = _iou(p["boxes"], g["boxes"])                  # (n, m): every detection x box
        for c in {int(c) for c in p["labels"].tolist()} & set(classes):
            keep = (p["labels"] == c).nonzero()[:, 0]
            keep = keep[torch.sort(-p["scores"][keep], stable=True).indices[:max_dets]]
            gt_idx = (g["labels"] == c).nonzero()[:, 0]
            flags[c].append(_match(ious[keep][:, gt_idx], thr))
            scores[c].append(p["scores"][keep])
        for c in g["labels"].tolist():
            n_gt[int(c)] += 1
    ap = torch.zeros(len(thr), len(classes), dtype=torch.float64)
    for ci, c in enumerate(classes):
        if not scores[c]:
            continue                                  # ground truth but no detection: AP 0
        order = torch.sort(-torch.cat(scores[c]), stable=True).indices
        tp = torch.cat(flags[c], dim=1)[:, order]                        # (T, n) by score
        for ti in range(len(thr)):
            ap[ti, ci] = _precision_at_recall(tp[ti], n_gt[c], rec).mean()
    nan = float("nan")

    def at(t: float) -> float:
        hit = (thr - t).abs() < 1e-9
        return float(ap[hit].mean()) if hit.any() and classes else nan

    return {"map": float(ap.mean()) if classes else nan, "map_50": at(0.5), "map_75": at(0.75),
            "classes": torch.tensor(classes, dtype=torch.long), "ap": ap,
            "ap_per_class": {c: float(ap[:, i].mean()) for i, c in enumerate(classes)}}


def mean_ap_over(result: dict, classes: Sequence[int]) -> float:
    """mAP@[.5:.95] of :func:`coco_map`'s ``result`` restricted to ``classes`` (e.g. the novel,
    held-out compositions of an open-vocabulary split); classes without ground truth are skipped,
    NaN when none is left."""
    vals = [result["ap_per_class"][int(c)] for c in classes if int(c) in result["ap_per_class"]]
    return sum(vals) / len(vals) if vals else float("nan")
