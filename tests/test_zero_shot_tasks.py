"""Chapter 08 zero-shot tasks: classifier, dense features, segmentation, proposals, detection.

A "colour oracle" VLM (knows every colour perfectly) gives the perfect-model checks; a constant
VLM gives chance; tiny random CLIPs check the MaskCLIP paths against independent computations.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from vlm_course.evaluation import dense as dense_mod
from vlm_course.evaluation.classifier import (
    ZeroShotClassifier,
    check_vocabulary,
    prompt_ensemble,
    template_sweep,
)
from vlm_course.evaluation.dense import dense_features, register_dense_hook
from vlm_course.evaluation.detection import ZeroShotDetector, crop_regions
from vlm_course.evaluation.proposals import connected_regions, foreground_map, propose_boxes
from vlm_course.evaluation.segmentation import ZeroShotSegmenter
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.resnet import ResNetConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.recipes.clip import shapeworld_vocab
from vlm_course.world import WorldConfig

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
           "yellow": (1.0, 1.0, 0.0)}
NAMES = list(COLOURS)
RGB = torch.tensor(list(COLOURS.values()))                       # (K, 3)
VOCAB = shapeworld_vocab(WorldConfig())                          # the default tokenizer words


class WordTokenizer:
    def __init__(self, words):
        self.words = set(words)

    def unknown_words(self, texts):
        return sorted({w for t in texts for w in t.split() if w not in self.words})


class ColourOracle(torch.nn.Module):
    """Text: one-hot of the colour word (dim K = "background").  Image: one-hot of the colour
    covering most pixels; dense: one-hot of each pixel's colour (black = background)."""

    def __init__(self, constant: bool = False):
        super().__init__()
        self.constant = constant
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(100.0)))
        self.tokenizer = WordTokenizer(NAMES + ["a", "the", "background", "photo", "of"])

    def tokenize(self, texts):
        return list(texts)

    def encode_text(self, texts):
        out = torch.zeros(len(texts), len(NAMES) + 1)
        for i, t in enumerate(texts):
            words = t.split()
            hit = [k for k, n in enumerate(NAMES) if n in words]
            out[i, hit[0] if hit else len(NAMES)] = 1.0
        return out

    def _pixel_classes(self, images):                             # (B, H, W) in 0..K
        d = ((images[:, None] - RGB[None, :, :, None, None]) ** 2).sum(2)   # (B, K, H, W)
        cls = d.argmin(1)
        return torch.where(images.amax(1) < 0.5, torch.full_like(cls, len(NAMES)), cls)

    def encode_dense(self, images, method="maskclip"):
        onehot = F.one_hot(self._pixel_classes(images), len(NAMES) + 1).permute(0, 3, 1, 2)
        return torch.ones_like(onehot.float()) if self.constant else onehot.float()

    def encode_image(self, images):
        counts = F.one_hot(self._pixel_classes(images), len(NAMES) + 1).sum((1, 2)).float()
        counts[:, -1] = 0                                         # ignore the background
        if self.constant:
            return torch.ones_like(counts)
        return F.one_hot(counts.argmax(1), len(NAMES) + 1).float()


def rectangle_scenes(n=12, H=32, seed=0):
    """Black scenes with 1-2 coloured rectangles; masks (0 = background, 1 + colour) and
    targets (boxes xyxy, labels = colour id)."""
    g = torch.Generator().manual_seed(seed)
    images, masks, targets = torch.zeros(n, 3, H, H), torch.zeros(n, H, H, dtype=torch.long), []
    for i in range(n):
        boxes, labels = [], []
        for slot in range(1 + i % 2):                              # left half / right half
            k = int(torch.randint(0, len(NAMES), (1,), generator=g))
            x1 = slot * H // 2 + int(torch.randint(1, 4, (1,), generator=g))
            y1 = int(torch.randint(1, 10, (1,), generator=g))
            w, h = (int(torch.randint(5, 12, (1,), generator=g)) for _ in range(2))
            images[i, :, y1:y1 + h, x1:x1 + w] = RGB[k][:, None, None]
            masks[i, y1:y1 + h, x1:x1 + w] = 1 + k
            boxes.append([x1, y1, x1 + w, y1 + h])
            labels.append(k)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                        "labels": torch.tensor(labels)})
    return images, masks, targets


@pytest.fixture(scope="module")
def tiny_vit_clip():
    torch.manual_seed(0)
    return CLIP(CLIPConfig.build(16, ViTConfig(image_size=16, patch_size=4, width=16,
                                                   layers=2, heads=2),
                                     TextConfig(width=16, layers=1, heads=2,
                                                context_length=12), VOCAB)).eval()


# ------------------------------------------------------------------ classifier
def test_classifier_perfect_constant_and_confusion():
    images, _, targets = rectangle_scenes(16)
    single = torch.tensor([i % 2 == 0 for i in range(16)])          # scenes with one rectangle
    labels = torch.stack([t["labels"][0] for t in targets])[single]
    clf = ZeroShotClassifier(ColourOracle(), NAMES, ["a {}", "the {}"])
    res = clf.evaluate(labels, images[single], ks=(1, 2))
    assert res["top1"] == 1.0 and res["confusion"].trace() == single.sum()
    assert clf.weights.shape == (4, 5) and torch.allclose(clf.weights.norm(dim=1), torch.ones(4))
    const = ZeroShotClassifier(ColourOracle(constant=True), NAMES, ["a {}"])
    pred = const.predict(images[single])
    assert (pred == pred[0]).all()                                    # one class for all
    balanced = torch.arange(4).repeat(3)
    assert const.evaluate(balanced, image_emb=torch.ones(12, 5))["top1"] == pytest.approx(0.25)


def test_classifier_scale_is_the_models_capped_temperature():
    clf = ZeroShotClassifier(ColourOracle(), NAMES, ["a photo of a {}"])
    assert clf.scale == pytest.approx(100.0)
    logits = clf.logits(image_emb=torch.eye(5)[:4])
    assert logits[0, 0] == pytest.approx(100.0) and logits[0, 1] == 0.0


def test_template_sweep_reports_singles_and_ensemble(tiny_vit_clip):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 16, 16, generator=g)
    emb = ZeroShotClassifier(tiny_vit_clip, ["circle", "square"]).encode(images)
    res = template_sweep(tiny_vit_clip, emb, torch.tensor([0, 1] * 3), ["circle", "square"],
                         ["a {}", "a photo of a {}"])
    assert set(res["single"]) == {"a {}", "a photo of a {}"}
    assert res["mean_single"] == pytest.approx(sum(res["single"].values()) / 2)
    assert 0.0 <= res["ensemble"] <= 1.0


def test_classifier_errors_and_strict_mode(tiny_vit_clip):
    with pytest.raises(ValueError, match="classnames"):
        ZeroShotClassifier(tiny_vit_clip, [])
    with pytest.raises(ValueError, match="classnames"):
        ZeroShotClassifier(tiny_vit_clip, ["circle", "circle"])
    with pytest.raises(ValueError, match="templates"):
        ZeroShotClassifier(tiny_vit_clip, ["circle"], ["a shape"])
    with pytest.raises(ValueError, match="hexagon"):
        ZeroShotClassifier(tiny_vit_clip, ["circle", "hexagon"], strict=True)
    lax = ZeroShotClassifier(tiny_vit_clip, ["circle", "hexagon"], ["a {} thingamajig"])
    assert lax.unknown_words == ["hexagon", "thingamajig"]
    assert check_vocabulary(tiny_vit_clip, ["circle"], ["a {}"]) == []
    with pytest.raises(ValueError, match="image_emb"):
        lax.logits(image_emb=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="exactly one"):
        lax.logits()
    with pytest.raises(ValueError, match="prompts"):
        prompt_ensemble(tiny_vit_clip, [])


# ------------------------------------------------------------------ dense features
def test_vit_value_path_equals_last_block_with_self_only_attention(tiny_vit_clip):
    visual = tiny_vit_clip.visual
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x = visual.ln_pre(visual.embed(visual.patchify(images)))
    first, last = visual.transformer.resblocks
    x, _ = first(x)
    N = x.shape[1]
    y, _ = last(x, attn_mask=torch.eye(N, dtype=torch.bool))       # each token sees itself only
    expected = (visual.ln_post(y[:, 1:]) @ visual.proj).transpose(1, 2).reshape(3, 16, 4, 4)
    torch.testing.assert_close(dense_features(tiny_vit_clip, images, "maskclip"), expected)
    naive = dense_features(tiny_vit_clip, images, "naive")
    assert naive.shape == expected.shape and not torch.allclose(naive, expected)


def test_vit_dense_equals_image_embedding_when_all_tokens_agree():
    torch.manual_seed(0)
    model = CLIP(CLIPConfig.build(8, ViTConfig(image_size=4, patch_size=4, width=8,
                                                   layers=2, heads=2),
                                      TextConfig(width=8, layers=1, heads=2,
                                                 context_length=8), VOCAB)).eval()
    v = model.visual
    image = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        v.positional_embedding.zero_()
        v.class_embedding.copy_(v.patch_embed(v.patchify(image))[0, 0])   # [CLS] = the patch
        pooled = model.encode_image(image, normalize=False)
    for method in ("maskclip", "naive"):
        torch.testing.assert_close(dense_features(model, image, method)[:, :, 0, 0], pooled)


def test_resnet_dense_equals_pool_on_a_one_by_one_grid():
    torch.manual_seed(0)
    cfg = CLIPConfig.build(16, ResNetConfig(layers=(1, 1, 1), width=16, image_size=16,
                                                output_dim=16, heads=2),
                               TextConfig(width=16, layers=1, heads=2, context_length=8), VOCAB,
                               image_tower="resnet")
    model = CLIP(cfg).eval()
    assert cfg.vision.grid_size == 1
    with torch.no_grad():
        model.visual.pool.positional_embedding.zero_()
        images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        pooled = model.encode_image(images, normalize=False)
    torch.testing.assert_close(dense_features(model, images)[:, :, 0, 0], pooled)
    with pytest.raises(ValueError, match="naive"):
        dense_features(model, images, "naive")


def test_dense_dispatch_hooks_and_errors(tiny_vit_clip):
    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

    class Model:
        visual = Tower()

    images = torch.rand(1, 3, 8, 8)
    with pytest.raises(TypeError, match="register_dense_hook"):
        dense_features(Model(), images)
    register_dense_hook(Tower, lambda tower, im, method: im[:, :2] * tower.w)
    try:
        assert dense_features(Model(), images).shape == (1, 2, 8, 8)
    finally:
        dense_mod._HOOKS.pop(Tower)
    with pytest.raises(ValueError, match="method"):
        dense_features(tiny_vit_clip, torch.rand(1, 3, 16, 16), "cls")
    with pytest.raises(ValueError, match="images"):
        dense_features(tiny_vit_clip, torch.rand(3, 16, 16))


# ------------------------------------------------------------------ segmentation
def test_segmenter_perfect_and_constant_model():
    images, masks, _ = rectangle_scenes(10)
    seg = ZeroShotSegmenter(ColourOracle(), NAMES, ["a {}"], background=("the background",))
    assert seg.num_classes == 5
    res = seg.evaluate(images, masks)
    assert res["miou"] == 1.0
    const = ZeroShotSegmenter(ColourOracle(constant=True), NAMES, ["a {}"]).evaluate(images, masks)
    present = int((~res["iou"].isnan()).sum())
    bg = float((masks == 0).float().mean())                       # every pixel called background
    assert const["miou"] == pytest.approx(bg / present)


def test_segmenter_on_a_real_tower_and_errors(tiny_vit_clip):
    images = torch.rand(2, 3, 16, 16)
    seg = ZeroShotSegmenter(tiny_vit_clip, ["circle", "square"], method="naive")
    logits = seg.logits(images)
    assert logits.shape == (2, 3, 16, 16) and torch.isfinite(logits).all()
    assert seg.predict(images).max() <= 2
    with pytest.raises(ValueError, match="masks"):
        seg.evaluate(images, torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="method"):
        ZeroShotSegmenter(tiny_vit_clip, ["circle"], method="cls")
    with pytest.raises(ValueError, match="background"):
        ZeroShotSegmenter(tiny_vit_clip, ["circle"], background="background")
    with pytest.raises(ValueError, match="classnames"):
        ZeroShotSegmenter(tiny_vit_clip, [])
    no_bg = ZeroShotSegmenter(tiny_vit_clip, ["circle", "square"], background=())
    assert no_bg.num_classes == 2


# ------------------------------------------------------------------ proposals
def test_connected_regions_equal_scipy_label():
    ndimage = pytest.importorskip("scipy.ndimage")
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 20, 17, generator=g) < 0.45
    ours = connected_regions(mask)
    for b in range(4):
        ref, _ = ndimage.label(mask[b].numpy(), structure=[[1, 1, 1]] * 3)
        assert torch.equal(ours[b], torch.from_numpy(ref).long())


def test_proposals_recover_rectangles_exactly():
    images, masks, targets = rectangle_scenes(8)
    assert torch.equal(foreground_map(images), masks > 0)
    for boxes, t in zip(propose_boxes(images), targets, strict=True):
        order = boxes[:, 0].argsort()
        torch.testing.assert_close(boxes[order], t["boxes"][t["boxes"][:, 0].argsort()])


def test_proposal_errors():
    with pytest.raises(ValueError, match="images"):
        propose_boxes(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="threshold"):
        foreground_map(torch.zeros(1, 3, 8, 8), threshold=1.5)
    with pytest.raises(ValueError, match="mask"):
        connected_regions(torch.zeros(1, 8, 8))


# ------------------------------------------------------------------ detection
def test_detector_perfect_model_scores_ap_one():
    images, _, targets = rectangle_scenes(12)
    det = ZeroShotDetector(ColourOracle(), NAMES, ["a {}"], top_k=2)
    res = det.evaluate(images, targets, novel=[3])
    assert res["map"] == pytest.approx(1.0)
    assert res["map_novel"] == pytest.approx(1.0) and res["map_base"] == pytest.approx(1.0)
    crops = crop_regions(images[:1], [targets[0]["boxes"]], context=0)
    assert torch.equal(crops[0], images[0])                      # one object: nothing painted


def test_detector_constant_model_is_near_chance():
    images, _, targets = rectangle_scenes(40, seed=1)
    res = ZeroShotDetector(ColourOracle(constant=True), NAMES, ["a {}"]).evaluate(images,
                                                                                  targets)
    # every box gets the same class with probability 1/K: only that class can score
    labels = torch.cat([d["labels"] for d in res["detections"]])
    scores = torch.cat([d["scores"] for d in res["detections"]])
    assert (labels == labels[0]).all() and torch.allclose(scores, torch.tensor(0.25))
    assert all(ap == 0.0 for c, ap in res["ap_per_class"].items() if c != int(labels[0]))
    assert res["map"] < 0.3


def test_detector_roi_region_on_a_real_tower_and_errors(tiny_vit_clip):
    images = torch.zeros(2, 3, 16, 16)
    images[:, 0, 2:8, 2:8] = 1.0
    det = ZeroShotDetector(tiny_vit_clip, ["circle", "square"], region="roi", top_k=2)
    out = det.detect(images)
    assert len(out) == 2 and out[0]["boxes"].shape == (2, 4)       # one box, two classes
    assert torch.allclose(out[0]["scores"].sum(), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"boxes\[0\].*x2 >= x1"):
        det.detect(images, boxes=[torch.tensor([[8.0, 2, 2, 8]]), torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="region"):
        ZeroShotDetector(tiny_vit_clip, ["circle"], region="mask")
    with pytest.raises(ValueError, match="top_k"):
        ZeroShotDetector(tiny_vit_clip, ["circle"], top_k=2)
    with pytest.raises(ValueError, match="nms_iou"):
        ZeroShotDetector(tiny_vit_clip, ["circle"], nms_iou=0.0)
    with pytest.raises(ValueError, match="targets"):
        det.evaluate(images, [])


# ------------------------------------------------------------------ ShapeWorld report
def test_world_config_from_card_and_detection_targets():
    from vlm_course.evaluation.shapeworld_report import detection_targets, world_config_from_card
    from vlm_course.world import ShapeWorld, WorldConfig

    cfg = WorldConfig.tiny()
    assert world_config_from_card({"world_config": cfg.to_dict()}) == cfg
    with pytest.raises(ValueError, match="card"):
        world_config_from_card({})
    batch = ShapeWorld(cfg).batch("test", range(4))
    targets = detection_targets(batch, len(cfg.shapes))
    for t, objs, boxes in zip(targets, batch.objects, batch.boxes, strict=True):
        assert torch.equal(t["boxes"], boxes)
        assert [cfg.compositions[c] for c in t["labels"].tolist()] == [
            (o["colour"], o["shape"]) for o in objs]
    with pytest.raises(ValueError, match="masks=True"):
        detection_targets(ShapeWorld(cfg).batch("test", range(2), masks=False), 8)


def test_zero_shot_report_runs_on_a_random_model():
    from vlm_course.evaluation.shapeworld_report import zero_shot_report
    from vlm_course.world import WorldConfig

    torch.manual_seed(0)
    model = CLIP(CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16,
                                                    layers=1, heads=2),
                                      TextConfig(width=16, layers=1, heads=2,
                                                 context_length=24), VOCAB)).eval()
    report = zero_shot_report(model, WorldConfig.tiny(), n_classify=16, n_retrieval=12,
                              n_dense=6)
    assert set(report) == {"classification", "retrieval", "segmentation", "detection"}
    assert report["classification"]["chance_shape_top1"] == pytest.approx(1 / 8)
    values = [v for section in report.values() for v in section.values()]
    assert all(math.isfinite(v) for v in values)
    assert 0.0 <= report["detection"]["map"] <= 1.0
