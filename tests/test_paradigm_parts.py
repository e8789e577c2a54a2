"""Chapter 01's parts: the multi-task classifier, the supervised recipe, fitting a classifier on
a few labels, HOG features and the paradigm curves."""

import pytest
import torch

from vlm_course.evaluation.handcrafted import hog_features
from vlm_course.evaluation.paradigms import (
    PARADIGMS,
    ClassificationTask,
    crossover_k,
    probe_curve,
    run_paradigms,
    shapeworld_shapes,
    train_curve,
    zero_shot_crossover,
)
from vlm_course.models.classifier import ClassifierConfig, ImageClassifier
from vlm_course.recipes import supervised
from vlm_course.training.finetune import LabelledSetBatches, accuracy, fit_classifier
from vlm_course.world import WorldConfig


def _bars(n=24, size=16):
    """Images of a vertical (class 0) or horizontal (class 1) bright bar at random places."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 3, size, size)
    y = torch.arange(n) % 2
    for i in range(n):
        p = int(torch.randint(3, size - 3, (1,), generator=g))
        if y[i] == 0:
            x[i, :, 2:-2, p - 1:p + 1] = 1.0
        else:
            x[i, :, p - 1:p + 1, 2:-2] = 1.0
    return x, y


def test_hog_shape_constant_image_and_orientation():
    x, y = _bars(4, 32)
    f = hog_features(x, orientations=9, cell=8, block=2)
    assert f.shape == (4, 9 * 4 * 3 * 3) and f.dtype == torch.float32
    assert hog_features(torch.full((1, 3, 32, 32), 0.7)).abs().max() == 0  # no gradient anywhere
    # bars of the two orientations fill different orientation bins
    bins = f.view(4, 3, 3, 2, 2, 9).sum((1, 2, 3, 4))                       # (4, 9)
    assert bins[0].argmax() != bins[1].argmax()
    with pytest.raises(ValueError, match="images must be a non-empty float"):
        hog_features(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="orientations must be an int >= 2"):
        hog_features(x, orientations=1)
    with pytest.raises(ValueError, match="images must be at least cell"):
        hog_features(x, cell=32)


def test_classifier_splits_logits_and_replaces_its_head():
    torch.manual_seed(0)
    model = ImageClassifier(ClassifierConfig.tiny((3, 8, 2), image_size=32)).eval()
    x = torch.rand(5, 3, 32, 32)
    parts = model.split_logits(model(x))
    assert [p.shape for p in parts] == [(5, 3), (5, 8), (5, 2)]
    feats = model.encode_image(x)
    model.replace_head((10,))
    assert model(x).shape == (5, 10) and model.config.num_classes == (10,)
    torch.testing.assert_close(model.encode_image(x), feats)               # tower kept
    cfg = ClassifierConfig.from_dict(model.config.to_dict())
    assert cfg == model.config
    with pytest.raises(ValueError, match="num_classes must be a non-empty tuple"):
        ClassifierConfig.tiny((1,))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, 10\)"):
        model.split_logits(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="config must be a ClassifierConfig"):
        ImageClassifier({})


def test_supervised_recipe_batches_step_and_evaluate():
    preset = supervised.PRESETS["tiny"]()
    assert preset.model.num_classes == supervised.num_classes(preset.world,
                                                              preset.options["tasks"])
    src = supervised.batches(preset.world, None, preset.train, **preset.options)
    images, labels = src(3)
    images2, labels2 = src(3)
    assert torch.equal(images, images2) and torch.equal(labels, labels2)     # pure in the step
    assert labels.shape == (64, 3) and labels[:, 0].min() >= 0 and labels[:, 0].max() <= 2
    torch.manual_seed(0)
    model = supervised.build_model(preset)
    loss, metrics = supervised.step(model, (images[:8], labels[:8]))
    assert loss.ndim == 0 and set(metrics) == {"acc_0", "acc_1", "acc_2"}
    # the loss is the sum of the three cross-entropies
    z = model.split_logits(model(images[:8]))
    expected = sum(torch.nn.functional.cross_entropy(z[t], labels[:8, t]) for t in range(3))
    torch.testing.assert_close(loss, expected)
    out = supervised.evaluate(model.eval(), preset.world, n=20)
    assert set(out) == {"count", "colour", "size", "n"}
    with pytest.raises(ValueError, match="tasks must be a non-empty list"):
        supervised.num_classes(preset.world, ("hue",))
    with pytest.raises(ValueError, match="tasks must match the head"):
        supervised.evaluate(model, preset.world, tasks=("shape",), n=4)


def test_fit_classifier_learns_a_few_labels_and_batches_are_seeded():
    x, y = _bars(24, 16)
    src = LabelledSetBatches(x, y, 8, seed=1, shift=2)
    a, b = src(5), src(5)
    assert torch.equal(a[0], b[0]) and a[0].shape == (8, 3, 16, 16)
    assert not torch.equal(src(6)[0], a[0])
    torch.manual_seed(0)
    model = ImageClassifier(ClassifierConfig.tiny((2,), image_size=16))
    before = accuracy(model, x, y)
    history = fit_classifier(model, x, y, steps=40, batch_size=12, lr=5e-3)
    assert history[-1]["loss"] < history[0]["loss"]
    assert accuracy(model, x, y) == 1.0, before
    with pytest.raises(ValueError, match=r"labels must be \(24,\) integer"):
        LabelledSetBatches(x, y.float())
    with pytest.raises(ValueError, match="shift must be an int >= 0"):
        LabelledSetBatches(x, y, shift=-1)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        LabelledSetBatches(x, y, batch_size=0)


def test_paradigm_curves_on_a_tiny_task():
    x, y = _bars(40, 16)
    task = ClassificationTask("bars", x[:20], y[:20], x[20:], y[20:], ("vertical", "horizontal"),
                              ("a {} bar",))
    cache = {}
    curve = probe_curve(lambda im: hog_features(im, cell=4), task, shots=(1, None), seeds=(0, 1),
                        cache=cache, key="hog")
    assert set(curve) == {1, "full"} and curve["full"]["mean"] == 1.0
    assert set(cache) == {("hog", "bars", "train"), ("hog", "bars", "test")}
    trained = train_curve(lambda: ImageClassifier(ClassifierConfig.tiny((2,), image_size=16)),
                          task, shots=(2,), seeds=(0,), steps=5)
    assert set(trained[2]) == {"mean", "std", "min", "max", "values"}
    assert 0.0 <= trained[2]["mean"] <= 1.0


def test_shapeworld_task_is_seeded_and_balanced_enough():
    t1 = shapeworld_shapes(WorldConfig(canvas=32), n_train=64, n_test=16, seed=3)
    t2 = shapeworld_shapes(WorldConfig(canvas=32), n_train=64, n_test=16, seed=3)
    assert torch.equal(t1.train_images, t2.train_images)
    assert t1.train_images.shape == (64, 3, 32, 32) and t1.num_classes == 8
    assert len(t1.templates) > 1 and all("{}" in t for t in t1.templates)
    with pytest.raises(ValueError, match="n_train must be an int >= 8"):
        shapeworld_shapes(n_train=2)


def test_grainy_shapeworld_task_adds_seeded_noise_to_the_same_scenes():
    clean = shapeworld_shapes(WorldConfig(canvas=32), n_train=16, n_test=8, seed=1)
    grainy = shapeworld_shapes(WorldConfig(canvas=32), n_train=16, n_test=8, seed=1, grain=0.05)
    again = shapeworld_shapes(WorldConfig(canvas=32), n_train=16, n_test=8, seed=1, grain=0.05)
    assert grainy.name == "shapeworld-shapes-grain0.05" and clean.name == "shapeworld-shapes"
    assert torch.equal(grainy.train_images, again.train_images)
    assert torch.equal(grainy.test_labels, clean.test_labels)
    noise = (grainy.test_images - clean.test_images).abs()
    assert 0.0 < float(noise.mean()) < 0.1 and grainy.test_images.max() <= 1.0
    with pytest.raises(ValueError, match="grain must be a number >= 0"):
        shapeworld_shapes(n_train=16, n_test=8, grain=-0.1)


def test_crossover_is_interpolated_in_log2_k():
    assert crossover_k([1, 2, 4], [0.2, 0.4, 0.8], 0.6) == pytest.approx(2 ** 1.5)
    assert crossover_k([1, 2, 4], [0.2, 0.4, 0.8], 0.4) == pytest.approx(2.0)
    assert crossover_k([1, 2, 4], [0.7, 0.8, 0.9], 0.5) == 1.0      # already there at k = 1
    assert crossover_k([1, 2, 4], [0.2, 0.3, 0.35], 0.5) is None    # never reached
    with pytest.raises(ValueError, match="shots must be increasing ints >= 1"):
        crossover_k([2, 1], [0.1, 0.2], 0.5)
    curve = {1: {"mean": 0.3, "values": [0.2, 0.4]}, 2: {"mean": 0.5, "values": [0.4, 0.6]},
             4: {"mean": 0.7, "values": [0.45, 0.95]}, "full": {"mean": 0.9, "values": [0.9, 0.9]}}
    cross = zero_shot_crossover(curve, 0.5)
    assert cross["k"] == pytest.approx(2.0) and cross["reached"] == 1
    assert cross["per_seed"][0] is None and 1.0 < cross["per_seed"][1] < 2.0
    assert cross["min"] == cross["max"] == cross["per_seed"][1]
    with pytest.raises(ValueError, match="curve must hold numeric budgets"):
        zero_shot_crossover({"full": curve["full"]}, 0.5)


def test_run_paradigms_needs_mae_for_the_mae_row():
    x, y = _bars(8, 16)
    task = ClassificationTask("bars", x, y, x, y, ("vertical", "horizontal"), ("a {} bar",))
    net = ImageClassifier(ClassifierConfig.tiny((2,), image_size=16))
    with pytest.raises(ValueError, match="mae must be a MaskedAutoencoder"):
        run_paradigms(task, clip=net, simclr=net, supervised=net, paradigms=(PARADIGMS[4],))


def test_vit_layer_features_end_at_the_tower_output():
    from vlm_course.evaluation.layers import layer_names, vit_layer_features
    from vlm_course.models.vit import VisionTransformer, ViTConfig

    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig(image_size=16, patch_size=8, width=32, layers=2, heads=2,
                                      output_dim=8)).eval()
    x = torch.rand(3, 3, 16, 16)
    feats = vit_layer_features(vit, x)
    assert layer_names(vit) == ["embed", "block 1", "block 2", "output"]
    assert [f.shape for f in feats] == [(3, 32), (3, 32), (3, 32), (3, 8)]
    torch.testing.assert_close(feats[-1], vit(x))
    torch.testing.assert_close(vit_layer_features(vit, x, pool="cls")[2],
                               vit.forward_features(x)[:, 0])       # block 2 = the last tokens
    with pytest.raises(ValueError, match="pool must be 'mean' or 'cls'"):
        vit_layer_features(vit, x, pool="max")


def test_issue13_presets_pretrain_on_related_data():
    from vlm_course.recipes import simclr

    shifted = supervised.PRESETS["tiny_shape_shifted"]()
    assert shifted.options["tasks"] == ("shape",) and shifted.model.num_classes == (8,)
    assert shifted.world.background == "textured" and len(shifted.world.colours) == 4
    assert shifted.world.shapes == WorldConfig().shapes            # the same eight shape names
    single = simclr.PRESETS["tiny48_single"]()
    assert single.world.max_objects == 1 and single.options["augment"].crop_scale[0] > 0.5
    assert single.model == simclr.PRESETS["tiny48"]().model       # CLIP tiny's image tower


def test_mae_features_are_encode_image_made_reproducible():
    from vlm_course.evaluation.paradigms import mae_features
    from vlm_course.models.mae import MAEConfig, MaskedAutoencoder

    torch.manual_seed(0)
    mae = MaskedAutoencoder(MAEConfig.tiny()).eval()
    x = torch.rand(6, 3, 48, 48)
    with torch.no_grad():
        feats = mae_features(mae)(x)
        torch.testing.assert_close(feats, mae.encode_image(x), atol=1e-5, rtol=1e-5)
        torch.manual_seed(1)                               # another RNG state: the same bits
        again = mae_features(mae)(x)
        split = torch.cat([mae_features(mae)(x[:2]), mae_features(mae)(x[2:])])
    assert feats.shape == (6, mae.config.encoder.width) and torch.equal(feats, again)
    torch.testing.assert_close(split, feats, atol=1e-6, rtol=1e-6)
