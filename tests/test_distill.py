"""Chapter 11 distillation: losses against their formulas, the teacher's targets, frozen teacher,
the student models' invariants and every documented error."""

import pytest
import torch
import torch.nn.functional as F

from vlm_course.distill.detector import (
    DetectorConfig,
    RegionDetector,
    apply_deltas,
    box_deltas,
    detect,
    detector_loss,
)
from vlm_course.distill.losses import embedding_distill_loss, kd_loss, pixel_kd_loss
from vlm_course.distill.segmenter import DenseStudent, SegmenterConfig, segmenter_loss
from vlm_course.distill.shapeworld import OpenVocabSplit, RegionBatches, detection_data
from vlm_course.distill.shapeworld_seg import pseudo_logits
from vlm_course.distill.teacher import crop_embeddings, freeze
from vlm_course.evaluation.proposals import background_colour
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.recipes.clip import shapeworld_vocab
from vlm_course.world import ShapeWorld, WorldConfig

WORLD = WorldConfig(canvas=48, max_objects=2)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return CLIP(CLIPConfig.tiny(shapeworld_vocab(WORLD))).eval()


@pytest.fixture(scope="module")
def scenes():
    return ShapeWorld(WORLD).batch("train", range(6))


# ------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("T", [0.5, 1.0, 4.0, 10.0])
def test_kd_loss_equals_kl_div_formula_with_t_squared(T):
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g) * 3
    expected = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1),
                        reduction="batchmean") * T * T
    torch.testing.assert_close(kd_loss(s, t, T), expected)
    s1 = s.clone().requires_grad_(True)
    s2 = s.clone().requires_grad_(True)
    kd_loss(s1, t, T).backward()
    (F.kl_div(F.log_softmax(s2 / T, dim=1), F.softmax(t / T, dim=1),
              reduction="batchmean") * T * T).backward()
    torch.testing.assert_close(s1.grad, s2.grad)


def test_kd_loss_zero_for_identical_logits_and_positive_otherwise():
    t = torch.randn(4, 6)
    assert float(kd_loss(t.clone(), t, 3.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_loss(t + torch.randn(4, 6), t, 3.0)) > 1e-4


def test_kd_loss_teacher_minus_inf_is_finite():
    t = torch.tensor([[2.0, float("-inf"), 0.0]])
    s = torch.randn(1, 3, requires_grad=True)
    loss = kd_loss(s, t, 2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_kd_loss_detaches_teacher():
    t = torch.randn(3, 4, requires_grad=True)
    kd_loss(torch.randn(3, 4, requires_grad=True), t, 2.0).backward()
    assert t.grad is None


def test_embedding_distill_l1_and_cosine():
    s, t = torch.randn(6, 8), torch.randn(6, 8)
    l1 = (F.normalize(s, dim=1) - F.normalize(t, dim=1)).abs().sum(1).mean()
    torch.testing.assert_close(embedding_distill_loss(s, t, "l1"), l1)
    torch.testing.assert_close(embedding_distill_loss(s, t, "l1", normalize=False),
                               (s - t).abs().sum(1).mean())
    torch.testing.assert_close(embedding_distill_loss(s, t, "cosine"),
                               (1 - F.cosine_similarity(s, t, dim=1)).mean())
    assert float(embedding_distill_loss(t, t.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(embedding_distill_loss(s[:0], t[:0])) == 0.0


def test_pixel_kd_equals_kd_per_pixel_and_respects_mask():
    s, t = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 3, 4)
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 5)          # noqa: E731
    torch.testing.assert_close(pixel_kd_loss(s, t, 2.0), kd_loss(flat(s), flat(t), 2.0))
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 0, 0] = True
    torch.testing.assert_close(pixel_kd_loss(s, t, 2.0, mask), kd_loss(flat(s)[mask.reshape(-1)],
                                                                      flat(t)[mask.reshape(-1)],
                                                                      2.0))
    assert float(pixel_kd_loss(s, t, 2.0, torch.zeros_like(mask))) == 0.0


# ------------------------------------------------------------------------------------ teacher
def test_region_target_is_exactly_the_teachers_crop_embedding(teacher, scenes):
    images, boxes = scenes.images[:3], [b.float() for b in scenes.boxes[:3]]
    got = crop_embeddings(teacher, images, boxes, context=2)
    bg = background_colour(images)
    rows = []
    for b, bx in enumerate(boxes):
        for x1, y1, x2, y2 in bx.int().tolist():
            crop = bg[b][:, None, None].expand(3, 48, 48).clone()
            ys, xs = slice(max(y1 - 2, 0), y2 + 2), slice(max(x1 - 2, 0), x2 + 2)
            crop[:, ys, xs] = images[b][:, ys, xs]
            with torch.no_grad():
                rows.append(teacher.encode_image(crop[None])[0])
    assert got.shape == (sum(len(b) for b in boxes), 64)
    torch.testing.assert_close(got, torch.stack(rows), atol=1e-5, rtol=1e-5)


def test_teacher_is_frozen_no_gradient_reaches_it(teacher, scenes):
    t = CLIP(CLIPConfig.tiny(shapeworld_vocab(WORLD)))               # requires_grad still True
    images, boxes = scenes.images[:2], [b.float() for b in scenes.boxes[:2]]
    target = crop_embeddings(t, images, boxes)
    assert not target.requires_grad
    student = RegionDetector(DetectorConfig())
    emb, _ = student(images, boxes)
    embedding_distill_loss(emb, target).backward()
    assert all(p.grad is None for p in t.parameters())
    assert all(p.grad is not None for p in (student.embed.weight, student.backbone[0].weight))
    frozen = freeze(t)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())


# ------------------------------------------------------------------------------- detector
def _batch(scenes, teacher):
    boxes = [b.float() for b in scenes.boxes]
    n = sum(len(b) for b in boxes)
    return {"images": scenes.images, "boxes": boxes, "labels": torch.arange(n) % 3,
            "text": F.normalize(torch.randn(2, 64), dim=1),
            "teacher": crop_embeddings(teacher, scenes.images, boxes),
            "box_targets": torch.cat(boxes) + 1.0, "box_valid": torch.ones(n, dtype=torch.bool)}


def test_detector_every_parameter_gets_gradient_and_shapes(teacher, scenes):
    torch.manual_seed(0)
    model = RegionDetector()
    batch = _batch(scenes, teacher)
    loss, metrics = detector_loss(model, batch, image_weight=1.0)
    loss.backward()
    assert torch.isfinite(loss) and set(metrics) == {"text", "image", "box"}
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    emb, deltas = model(batch["images"], batch["boxes"])
    assert emb.shape == (len(batch["labels"]), 64) and deltas.shape == (len(batch["labels"]), 4)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(emb)))


def test_detector_base_only_ignores_teacher(scenes, teacher):
    model = RegionDetector()
    batch = _batch(scenes, teacher)
    del batch["teacher"]
    loss, metrics = detector_loss(model, batch, image_weight=0.0)
    assert torch.isfinite(loss) and metrics["image"] == 0.0


def test_box_deltas_roundtrip():
    b = torch.tensor([[2.0, 3.0, 12.0, 9.0], [0.0, 0.0, 5.0, 5.0]])
    t = torch.tensor([[1.0, 4.0, 13.0, 8.0], [1.0, 1.0, 6.0, 4.0]])
    torch.testing.assert_close(apply_deltas(b, box_deltas(b, t)), t)


def test_detect_format_and_batch_independence(scenes):
    torch.manual_seed(0)
    model = RegionDetector().eval()
    text = F.normalize(torch.randn(8, 64), dim=1)
    boxes = [b.float() for b in scenes.boxes]
    dets = detect(model, scenes.images, boxes, text)
    one = detect(model, scenes.images[2:3], boxes[2:3], text)[0]
    assert len(dets) == len(boxes)
    for d, b in zip(dets, boxes, strict=True):
        assert d["boxes"].shape[1] == 4 and len(d["scores"]) == len(d["labels"]) <= len(b)
        assert ((d["scores"] > 0) & (d["scores"] <= 1)).all()
    torch.testing.assert_close(one["scores"], dets[2]["scores"])


def test_detection_data_labels_novel_objects_background(teacher):
    split = OpenVocabSplit(WORLD.shapes)
    data = detection_data(teacher, WORLD, split, n=12, seed=3)
    assert data.teacher.shape == (len(data.labels), 64)
    assert int(data.labels.max()) <= len(split.base_ids)
    assert bool((data.box_valid == (data.labels > 0)).all())
    batch = RegionBatches(data, 4)(0)
    assert len(batch["boxes"]) == 4 and len(batch["labels"]) == sum(len(b) for b in batch["boxes"])
    torch.testing.assert_close(RegionBatches(data, 4)(5)["images"],
                               RegionBatches(data, 4)(5)["images"])


# ------------------------------------------------------------------------------ segmenter
def test_segmenter_shapes_gradients_and_modes(scenes):
    torch.manual_seed(0)
    model = DenseStudent(SegmenterConfig())
    text = F.normalize(torch.randn(9, 64), dim=1)
    out = model(scenes.images, text)
    assert out.shape == (6, 9, 48, 48)
    labels = torch.where(scenes.semantic_masks > 4, scenes.semantic_masks, -1)
    batch = {"images": scenes.images, "text": text, "labels": labels,
             "teacher": torch.randn(6, 9, 48, 48)}
    loss, m = segmenter_loss(model, batch, pseudo_labels=True, kd_weight=1.0)
    loss.backward()
    assert torch.isfinite(loss) and m["kd"] > 0
    assert all(p.grad is not None for p in model.parameters())
    no_teacher = {k: v for k, v in batch.items() if k != "teacher"}
    loss0, m0 = segmenter_loss(model, no_teacher, pseudo_labels=False)
    expected = F.cross_entropy(model(scenes.images, text), labels.clamp(min=0))
    torch.testing.assert_close(loss0, expected)


def test_pseudo_logits_keep_only_top_class(teacher, scenes):
    logits = pseudo_logits(teacher, WORLD, scenes.images[:2], keep_top=1)
    assert logits.shape == (2, 9, 48, 48)
    allowed = torch.isfinite(logits[:, :, 0, 0])
    assert allowed[:, 0].all() and (allowed.sum(1) == 2).all()


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, match", [
    (lambda: kd_loss(torch.randn(2, 3), torch.randn(2, 4)), "teacher_logits"),
    (lambda: kd_loss(torch.randn(3), torch.randn(3)), "student_logits"),
    (lambda: kd_loss(torch.randn(2, 3).long(), torch.randn(2, 3)), "student_logits"),
    (lambda: kd_loss(torch.randn(2, 3), torch.randn(2, 3), 0.0), "temperature"),
    (lambda: kd_loss(torch.randn(2, 3), torch.randn(2, 3), float("inf")), "temperature"),
    (lambda: embedding_distill_loss(torch.randn(2, 3), torch.randn(3, 3)), "teacher_emb"),
    (lambda: embedding_distill_loss(torch.randn(2, 3), torch.randn(2, 3), "l2"), "distance"),
    (lambda: embedding_distill_loss(torch.randn(3), torch.randn(3)), "student_emb"),
    (lambda: pixel_kd_loss(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 4)), "teacher_logits"),
    (lambda: pixel_kd_loss(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3),
                           mask=torch.ones(1, 3, 3)), "mask"),
    (lambda: pixel_kd_loss(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3),
                           mask=torch.ones(1, 3, 4, dtype=torch.bool)), "mask"),
    (lambda: freeze("clip"), "model"),
    (lambda: OpenVocabSplit(WORLD.shapes, ("hexagon",)), "novel"),
    (lambda: OpenVocabSplit(WORLD.shapes, WORLD.shapes), "novel"),
    (lambda: DetectorConfig(embed_dim=0), "embed_dim"),
    (lambda: DetectorConfig(channels=(8,)), "channels"),
    (lambda: SegmenterConfig(logit_scale=0.0), "logit_scale"),
    (lambda: RegionDetector().forward_features(torch.rand(2, 48, 48)), "images"),
    (lambda: RegionDetector().class_logits(torch.randn(2, 64), torch.randn(3, 32)), "text"),
    (lambda: DenseStudent()(torch.rand(1, 3, 16, 16), torch.randn(3, 8)), "text"),
    (lambda: detector_loss(RegionDetector(), {"images": 0}, image_weight=-1.0), "image_weight"),
    (lambda: detector_loss(RegionDetector(), {"images": 0}), "missing"),
    (lambda: segmenter_loss(DenseStudent(), {"images": 0}, kd_weight=-1.0), "kd_weight"),
    (lambda: segmenter_loss(DenseStudent(), {"images": 0}), "missing"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_crop_embeddings_errors(teacher, scenes):
    with pytest.raises(ValueError, match="boxes"):
        crop_embeddings(teacher, scenes.images[:2], [scenes.boxes[0]])
    with pytest.raises(ValueError, match="images"):
        crop_embeddings(teacher, scenes.images[0], [scenes.boxes[0]])
    with pytest.raises(ValueError, match=r"boxes\[0\]"):
        crop_embeddings(teacher, scenes.images[:1], [torch.tensor([[5.0, 5.0, 1.0, 9.0]])])
    with pytest.raises(ValueError, match="keep_top"):
        pseudo_logits(teacher, WORLD, scenes.images[:1], keep_top=0)


def test_open_vocab_split_and_split_miou(scenes):
    from vlm_course.distill.shapeworld_seg import evaluate_segmenter

    split = OpenVocabSplit(WORLD.shapes, ("star", "ring"))
    assert split.novel_ids == (WORLD.shapes.index("star"), WORLD.shapes.index("ring"))
    assert sorted(split.base_ids + split.novel_ids) == list(range(len(WORLD.shapes)))
    masks = scenes.semantic_masks
    perfect = evaluate_segmenter(lambda x: masks.clone(), scenes.images, masks, split)
    assert perfect["miou"] == pytest.approx(1.0) and perfect["iou_background"] == 1.0
    present = {int(c) - 1 for c in masks.unique() if c > 0}
    if present & set(split.base_ids):
        assert perfect["miou_base"] == pytest.approx(1.0)
    nothing = evaluate_segmenter(lambda x: torch.zeros_like(masks), scenes.images, masks, split)
    assert nothing["miou_base"] == 0.0 or nothing["miou_base"] != nothing["miou_base"]


def test_detector_loss_cosine_distance_matches_loss_function(teacher, scenes):
    torch.manual_seed(0)
    model = RegionDetector()
    batch = _batch(scenes, teacher)
    _, m = detector_loss(model, batch, image_weight=1.0, box_weight=0.0, distance="cosine")
    emb, _ = model(batch["images"], batch["boxes"])
    expected = embedding_distill_loss(emb, batch["teacher"], "cosine")
    assert m["image"] == pytest.approx(float(expected.detach()), rel=1e-5)
