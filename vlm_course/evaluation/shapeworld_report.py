"""The four zero-shot tasks of chapter 08 measured on ShapeWorld, with their chance levels.

One function, :func:`zero_shot_report`, gives the numbers of the chapter's closing table for any
VLM (``bench/zero_shot_report.py`` prints them for the shipped CLIP):

* **classification** — top-1 / top-5 on single-object test scenes for the shape, colour and
  colour+shape tasks (prompt ensembles of
  :func:`~vlm_course.evaluation.zeroshot.shapeworld_prompts`), and colour+shape top-1 on the
  scenes whose pair was held out of training;
* **retrieval** — R@1/5/10 both ways and median rank on test scenes with all their captions
  (:func:`~vlm_course.evaluation.retrieval.evaluate_retrieval_ranked`);
* **segmentation** — mIoU over background + shapes, MaskCLIP value path and naive patch tokens;
* **detection** — COCO box mAP over the colour–shape classes, on all classes, the seen (base) ones
  and the held-out (novel) ones, with crop regions and connected-region proposals.

Each number comes with the score of a model that knows nothing (``chance_*``): 1/K, K/N, the
all-background segmentation, and detections with uniformly random class labels.
"""

from __future__ import annotations

import torch

from .box_ap import coco_map, mean_ap_over
from .classifier import ZeroShotClassifier
from .detection import ZeroShotDetector
from .metrics import mean_iou
from .proposals import propose_boxes
from .retrieval import evaluate_retrieval_ranked
from .segmentation import ZeroShotSegmenter
from .zeroshot import shapeworld_prompts

__all__ = ["world_config_from_card", "detection_targets", "zero_shot_report"]


def world_config_from_card(card: dict):
    """The :class:`~vlm_course.world.WorldConfig` a shipped checkpoint was trained on (its card's
    ``world_config``).  Raises ValueError for a dict without ``world_config``."""
    from vlm_course.world import WorldConfig

    if not isinstance(card, dict) or "world_config" not in card:
        raise ValueError("card must be a checkpoint card (a dict with 'world_config')")
    return WorldConfig.from_dict(card["world_config"])


def detection_targets(batch, num_shapes: int) -> list[dict[str, torch.Tensor]]:
    """Ground truth for colour–shape detection from a ShapeWorld ``SceneBatch`` rendered with
    masks: one dict per scene, ``boxes`` (m, 4) float32 xyxy and ``labels`` (m,) int64 composition
    ids ``colour_id * num_shapes + shape_id`` (the order of ``WorldConfig.compositions``)."""
    if batch.boxes is None:
        raise ValueError("batch must be rendered with masks=True (it has no boxes)")
    return [{"boxes": boxes.float(),
             "labels": torch.tensor([o["colour_id"] * num_shapes + o["shape_id"] for o in objs],
                                    dtype=torch.long)}
            for boxes, objs in zip(batch.boxes, batch.objects, strict=True)]


def _classification(model, cfg, n: int, split: str) -> dict[str, float]:
    from vlm_course.world import ShapeWorld

    single = ShapeWorld(cfg.replace(min_objects=1, max_objects=1)).batch(split, range(n),
                                                                         masks=False)
    S = len(cfg.shapes)
    labels = {"shape": single.labels["shape"], "colour": single.labels["colour"],
              "colour+shape": single.labels["colour"] * S + single.labels["shape"]}
    heldout = single.labels["heldout"].bool()
    out: dict[str, float] = {}
    emb = None
    for task, y in labels.items():
        clf = ZeroShotClassifier(model, *shapeworld_prompts(cfg, task))
        emb = clf.encode(single.images) if emb is None else emb
        res = clf.evaluate(y, image_emb=emb, ks=(1, 5))
        out[f"{task}_top1"], out[f"{task}_top5"] = res["top1"], res["top5"]
        out[f"chance_{task}_top1"] = 1.0 / clf.num_classes
        if task == "colour+shape":
            pred = clf.predict(image_emb=emb)
            for name, sel in (("seen", ~heldout), ("heldout", heldout)):
                out[f"{name}_colour+shape_top1"] = float((pred[sel] == y[sel]).float().mean())
    return out


def zero_shot_report(model, world_cfg, *, split: str = "test", n_classify: int = 2000,
                     n_retrieval: int = 1000, n_dense: int = 500, seed: int = 0) -> dict:
    """All chapter-08 numbers for ``model`` on scenes ``0 .. n - 1`` of ``split`` of
    ``world_cfg`` (see the module docstring); ``seed`` drives the random-label chance detector.

    Returns ``{"classification": {...}, "retrieval": {...}, "segmentation": {...},
    "detection": {...}}`` of floats (and counts).
    """
    from vlm_course.world import ShapeWorld

    cfg = world_cfg
    report = {"classification": _classification(model, cfg, n_classify, split)}

    world = ShapeWorld(cfg)
    scenes = world.batch(split, range(n_retrieval), masks=False)
    ret = evaluate_retrieval_ranked(model, scenes.images, scenes.captions, ks=(1, 5, 10))
    ret["chance_t2i_R@1"] = 1.0 / (n_retrieval - ret["n_duplicate_images"])
    report["retrieval"] = ret

    dense = world.batch(split, range(n_dense), masks=True)
    shapes, shape_templates = shapeworld_prompts(cfg, "shape")
    seg: dict[str, float] = {}
    for method in ("maskclip", "naive"):
        res = ZeroShotSegmenter(model, shapes, shape_templates, method=method).evaluate(
            dense.images, dense.semantic_masks)
        seg[f"miou_{method}"] = res["miou"]
    K = 1 + len(shapes)
    seg["chance_miou_all_background"] = mean_iou(torch.zeros_like(dense.semantic_masks),
                                                 dense.semantic_masks, K)["miou"]
    report["segmentation"] = seg

    names, comp_templates = shapeworld_prompts(cfg, "colour+shape")
    targets = detection_targets(dense, len(cfg.shapes))
    det = ZeroShotDetector(model, names, comp_templates, region="crop").evaluate(
        dense.images, targets, novel=cfg.heldout_ids)
    g = torch.Generator().manual_seed(seed)
    random_dets = [{"boxes": b, "scores": torch.rand(len(b), generator=g),
                    "labels": torch.randint(0, len(names), (len(b),), generator=g)}
                   for b in propose_boxes(dense.images)]
    chance = coco_map(random_dets, targets)
    report["detection"] = {
        "map": det["map"], "map_50": det["map_50"], "map_base": det["map_base"],
        "map_novel": det["map_novel"], "chance_map": chance["map"],
        "chance_map_novel": mean_ap_over(chance, cfg.heldout_ids),
        "n_images": n_dense, "n_boxes": sum(len(t["labels"]) for t in targets)}
    return report
