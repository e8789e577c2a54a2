"""Chapter 08 metrics: top-k, confusion matrix, mIoU and COCO box AP, against torchmetrics."""

import pytest
import torch

from vlm_course.evaluation.box_ap import (
    COCO_IOU_THRESHOLDS,
    COCO_RECALL_THRESHOLDS,
    check_boxes,
    coco_map,
    mean_ap_over,
)
from vlm_course.evaluation.metrics import confusion_matrix, iou_per_class, mean_iou, topk_accuracy


def random_masks(seed, B=3, H=12, W=10, K=5):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, K - 1, (B, H, W), generator=g)      # class K-1 never in target
    pred = torch.where(torch.rand(B, H, W, generator=g) < 0.6, target,
                       torch.randint(0, K, (B, H, W), generator=g))
    return pred, target


# ------------------------------------------------------------------ classification metrics
def test_topk_and_confusion_match_torchmetrics():
    tm = pytest.importorskip("torchmetrics.classification")
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(200, 9, generator=g), torch.randint(0, 9, (200,), generator=g)
    ours = topk_accuracy(logits, labels, ks=(1, 5))
    for k in (1, 5):
        ref = tm.MulticlassAccuracy(num_classes=9, top_k=k, average="micro")(logits, labels)
        assert ours[f"top{k}"] == pytest.approx(float(ref), abs=1e-6)
    pred = logits.argmax(1)
    ref = tm.MulticlassConfusionMatrix(num_classes=9)(pred, labels)
    assert torch.equal(confusion_matrix(pred, labels, 9), ref.long())


def test_topk_perfect_constant_and_clipped_k():
    labels = torch.arange(4).repeat(5)                                  # balanced, K = 4
    perfect = torch.nn.functional.one_hot(labels, 4).float()
    assert topk_accuracy(perfect, labels, ks=(1,))["top1"] == 1.0
    constant = torch.zeros(20, 4)
    assert topk_accuracy(constant, labels, ks=(1,))["top1"] == pytest.approx(1 / 4)   # chance
    assert topk_accuracy(constant, labels, ks=(5,))["top5"] == 1.0                    # k > K


@pytest.mark.parametrize("bad, match", [
    ("shape", "labels"), ("dtype", "labels"), ("range", "labels"), ("ks", "ks"),
])
def test_topk_errors(bad, match):
    logits, labels, ks = torch.zeros(3, 4), torch.tensor([0, 1, 2]), (1,)
    if bad == "shape":
        labels = torch.tensor([0, 1])
    elif bad == "dtype":
        labels = labels.float()
    elif bad == "range":
        labels = torch.tensor([0, 1, 4])
    else:
        ks = (0,)
    with pytest.raises((ValueError, TypeError), match=match):
        topk_accuracy(logits, labels, ks)


# ------------------------------------------------------------------ mIoU
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_iou_equals_torchmetrics_jaccard(seed):
    tm = pytest.importorskip("torchmetrics.classification")
    pred, target = random_masks(seed)
    ours = mean_iou(pred, target, num_classes=6)                        # class 5 absent: left out
    ref = tm.MulticlassJaccardIndex(num_classes=6, average="macro")(pred.flatten(),
                                                                    target.flatten())
    assert ours["miou"] == pytest.approx(float(ref), abs=1e-6)
    per = tm.MulticlassJaccardIndex(num_classes=6, average="none")(pred.flatten(),
                                                                  target.flatten())
    present = ~ours["iou"].isnan()
    torch.testing.assert_close(ours["iou"][present], per[present])
    assert ours["iou"][5].isnan()


def test_mean_iou_per_class_equals_torchmetrics_meaniou_one_image():
    seg = pytest.importorskip("torchmetrics.segmentation")
    pred, target = random_masks(3, B=1)
    ours = mean_iou(pred, target, num_classes=6)["iou"]
    ref = seg.MeanIoU(num_classes=6, input_format="index", per_class=True)(pred, target)
    torch.testing.assert_close(torch.nan_to_num(ours, nan=-1.0), ref.float())


def test_mean_iou_perfect_constant_and_ignore():
    _, target = random_masks(4)
    assert mean_iou(target, target, 6)["miou"] == 1.0
    constant = mean_iou(torch.zeros_like(target), target, 6)
    frac0 = float((target == 0).float().mean())
    # all-background: IoU_0 = frequency of class 0, the other present classes 0
    assert constant["miou"] == pytest.approx(frac0 / 4)
    ignored = target.clone()
    ignored[:, 0] = 255
    assert mean_iou(ignored.clamp(max=5), ignored, 6, ignore_index=255)["miou"] == 1.0


@pytest.mark.parametrize("bad, match", [
    ("size", "pred must have the masks' size"), ("float", "pred"), ("range", "target"),
    ("ndim", "target"),
])
def test_mean_iou_errors(bad, match):
    pred, target = random_masks(0)
    if bad == "size":
        pred = pred[:, :6]
    elif bad == "float":
        pred = pred.float()
    elif bad == "range":
        target = target + 10
    else:
        pred, target = pred[0], target[0]
    with pytest.raises((ValueError, TypeError), match=match):
        mean_iou(pred, target, 6)


def test_iou_per_class_hand_example():
    conf = torch.tensor([[3, 1], [0, 2]])        # class 0: TP 3, FN 1, FP 0 -> 3/4; class 1: 2/3
    torch.testing.assert_close(iou_per_class(conf), torch.tensor([0.75, 2 / 3]))


# ------------------------------------------------------------------ COCO box AP
def random_detection_problem(seed, n_images=10, n_classes=4):
    g = torch.Generator().manual_seed(seed)

    def boxes(n):  # integer coordinates: exact in float32 and float64 alike
        xy = torch.randint(0, 40, (n, 2), generator=g).float()
        return torch.cat([xy, xy + torch.randint(1, 20, (n, 2), generator=g).float()], 1)

    preds, targets = [], []
    for _ in range(n_images):
        m = int(torch.randint(0, 5, (1,), generator=g))
        n = int(torch.randint(0, 8, (1,), generator=g))
        gt, gl = boxes(m), torch.randint(0, n_classes, (m,), generator=g)
        jitter = torch.randint(-3, 4, (m, 4), generator=g).float()
        near = gt + jitter
        near[:, 2:] = torch.maximum(near[:, 2:], near[:, :2] + 1)
        pb = torch.cat([near, boxes(n)])
        pl = torch.cat([gl, torch.randint(0, n_classes + 1, (n,), generator=g)])
        preds.append({"boxes": pb, "scores": torch.rand(len(pb), generator=g), "labels": pl})
        targets.append({"boxes": gt, "labels": gl})
    return preds, targets


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_map_equals_torchmetrics(seed):
    det = pytest.importorskip("torchmetrics.detection")
    pytest.importorskip("pycocotools")
    preds, targets = random_detection_problem(seed)
    ref = det.MeanAveragePrecision(iou_thresholds=list(COCO_IOU_THRESHOLDS),
                                   rec_thresholds=list(COCO_RECALL_THRESHOLDS),
                                   class_metrics=True, backend="pycocotools")
    ref.update(preds, targets)
    r = ref.compute()
    ours = coco_map(preds, targets)
    for key in ("map", "map_50", "map_75"):
        assert ours[key] == pytest.approx(float(r[key]), abs=1e-6), key
    ref_per_class = dict(zip(r["classes"].tolist(), r["map_per_class"].tolist(), strict=True))
    for c, ap in ours["ap_per_class"].items():
        assert ap == pytest.approx(ref_per_class[c], abs=1e-6)
    # a class with predictions but no ground truth is left out by both (torchmetrics: -1)
    assert all(ref_per_class[c] == -1 for c in ref_per_class if c not in ours["ap_per_class"])


def test_coco_map_max_dets_equals_torchmetrics():
    det = pytest.importorskip("torchmetrics.detection")
    pytest.importorskip("pycocotools")
    preds, targets = random_detection_problem(7, n_classes=2)
    ref = det.MeanAveragePrecision(iou_thresholds=list(COCO_IOU_THRESHOLDS),
                                   rec_thresholds=list(COCO_RECALL_THRESHOLDS),
                                   max_detection_thresholds=[1, 3, 100], extended_summary=True)
    ref.warn_on_many_detections = False
    ref.update(preds, targets)
    precision = ref.compute()["precision"][:, :, :, 0, 1]      # (T, R, K) at area "all", 3 dets
    expected = precision[precision > -1].mean()
    assert coco_map(preds, targets, max_dets=3)["map"] == pytest.approx(float(expected), abs=1e-6)
    assert coco_map(preds, targets, max_dets=3)["map"] < coco_map(preds, targets)["map"]


def test_coco_map_perfect_constant_and_missing_class():
    _, targets = random_detection_problem(5)
    perfect = [{"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])),
                "labels": t["labels"]} for t in targets]
    assert coco_map(perfect, targets)["map"] == pytest.approx(1.0)
    # every box found but labelled with class 0: only class 0 keeps its AP
    constant = [{"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])),
                 "labels": torch.zeros_like(t["labels"])} for t in targets]
    r = coco_map(constant, targets)
    share = sum(int((t["labels"] == 0).sum()) for t in targets) / sum(
        len(t["labels"]) for t in targets)
    # all class-0 boxes are found: the precision at recall 1 is the class-0 share of the boxes,
    # and interpolated precision never falls below it
    assert share - 1e-9 <= r["ap_per_class"][0] < 1.0
    assert all(r["ap_per_class"][c] == 0.0 for c in r["ap_per_class"] if c != 0)
    assert mean_ap_over(r, [1, 2]) == 0.0
    assert mean_ap_over(r, [99]) != mean_ap_over(r, [99])         # NaN: no such class


def test_coco_map_hand_example():
    # one ground-truth box; two detections: a miss (higher score) then an exact hit.
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([0])}]
    preds = [{"boxes": torch.tensor([[20.0, 20, 30, 30], [0, 0, 10, 10]]),
              "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 0])}]
    # precision at recall 1 is 1/2 at every recall threshold -> AP = 0.5 at every IoU
    assert coco_map(preds, targets)["map"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad, match", [
    ("inverted", r"predictions\[0\]\['boxes'\].*x2 >= x1"),
    ("inverted_gt", r"targets\[0\]\['boxes'\]"),
    ("labels", "labels"), ("scores", "scores"), ("count", "one entry per image"),
    ("shape", r"\(n, 4\)"),
])
def test_coco_map_errors(bad, match):
    box = torch.tensor([[0.0, 0, 10, 10]])
    preds = [{"boxes": box.clone(), "scores": torch.tensor([1.0]), "labels": torch.tensor([0])}]
    targets = [{"boxes": box.clone(), "labels": torch.tensor([0])}]
    if bad == "inverted":
        preds[0]["boxes"] = torch.tensor([[10.0, 0, 5, 10]])
    elif bad == "inverted_gt":
        targets[0]["boxes"] = torch.tensor([[0.0, 10, 10, 5]])
    elif bad == "labels":
        preds[0]["labels"] = torch.tensor([0, 1])
    elif bad == "scores":
        preds[0]["scores"] = torch.tensor([float("nan")])
    elif bad == "count":
        targets = targets * 2
    else:
        preds[0]["boxes"] = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=match):
        coco_map(preds, targets)


def test_check_boxes_type_error():
    with pytest.raises(TypeError, match="boxes"):
        check_boxes("boxes", [[0, 0, 1, 1]])
