"""Recipes: the registry, CLIP's and SimCLR's batch sources, steps, presets and evaluations."""

import math
import re

import pytest
import torch

from vlm_course import recipes
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.recipes import clip as clip_recipe
from vlm_course.recipes import simclr as simclr_recipe
from vlm_course.training.loop import TrainConfig, train
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig.tiny())


def tiny_clip(world, seed=0):
    torch.manual_seed(seed)
    return CLIP(CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                               heads=2),
                                 TextConfig(width=16, layers=1, heads=2, context_length=24),
                                 clip_recipe.shapeworld_vocab(world.cfg)))


def test_registry_imports_each_recipe_and_names_unknown_ones():
    assert set(recipes.RECIPES) >= {"clip", "simclr"}
    for name in recipes.RECIPES:
        module = recipes.get(name)
        for attr in ("PRESETS", "build_model", "model_from_config", "batches", "step", "evaluate"):
            assert hasattr(module, attr), (name, attr)
    known = re.escape(str(sorted(recipes.RECIPES)))
    with pytest.raises(ValueError, match=rf"recipe must be one of {known}, got 'x'"):
        recipes.get("x")


def test_clip_presets_match_their_world():
    for name, make in clip_recipe.PRESETS.items():
        preset = make()
        assert preset.world.canvas == preset.model.image_size, name
        assert CLIP(preset.model).tokenizer.unknown_words(
            ShapeWorld(preset.world).pairs("train", range(64))[1]) == [], name
    assert clip_recipe.PRESETS["tiny"]().train.steps == 1500


def test_clip_batches_are_pure_and_shard_by_rank(world):
    model = tiny_clip(world)
    source = clip_recipe.batches(world, model, TrainConfig(batch_size=8, seed=3))
    images, tokens = source(2)
    again, tokens2 = source(2)
    assert torch.equal(images, again) and torch.equal(tokens["input_ids"], tokens2["input_ids"])
    torch.testing.assert_close(images, world.images("train", range(16, 24)), rtol=0, atol=0)
    halves = [source(2, r, 2) for r in range(2)]
    torch.testing.assert_close(torch.cat([h[0] for h in halves]), images, rtol=0, atol=0)
    assert torch.equal(torch.cat([h[1]["input_ids"] for h in halves]), tokens["input_ids"])
    other_seed = clip_recipe.batches(world, model, TrainConfig(batch_size=8, seed=4))(2)[1]
    assert not torch.equal(other_seed["input_ids"], tokens["input_ids"])   # captions follow seed
    with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
        clip_recipe.ClipBatches(world, model.tokenize, 1)
    with pytest.raises(TypeError, match="world must be a ShapeWorld or WorldConfig, got str"):
        clip_recipe.ClipBatches("world", model.tokenize, 8)
    with pytest.raises(TypeError, match="tokenize must be callable"):
        clip_recipe.ClipBatches(world, None, 8)
    with pytest.raises(ValueError, match="split"):
        clip_recipe.ClipBatches(world, model.tokenize, 8, split="dev")
    with pytest.raises(ValueError, match="batch_size=8 must split evenly over world_size=3"):
        source(0, 0, 3)


def test_clip_step_is_the_clip_loss_and_training_lowers_it(world):
    from vlm_course.objectives.contrastive import clip_loss

    model = tiny_clip(world)
    cfg = TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup_steps=5)
    batch = clip_recipe.batches(world, model, cfg)(0)
    loss, metrics = clip_recipe.step(model, batch)
    img, txt, scale = model(*batch)
    torch.testing.assert_close(loss, clip_loss(img, txt, scale))
    assert metrics == {"logit_scale": pytest.approx(1 / 0.07)}
    before = clip_recipe.in_batch_metrics(model, world, n=64, batch_size=16)["loss"]
    train(model, clip_recipe.batches(world, model, cfg), clip_recipe.step, cfg,
          after_step=clip_recipe.after_step)
    after = clip_recipe.in_batch_metrics(model, world, n=64, batch_size=16)
    assert after["loss"] < before - 0.1, (before, after)
    assert 0 <= after["i2t_top1"] <= 1
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        clip_recipe.in_batch_metrics(model, world, n=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 2, got 1"):
        clip_recipe.in_batch_metrics(model, world, n=4, batch_size=1)


def test_clip_evaluate_reports_the_card_numbers(world):
    out = clip_recipe.evaluate(tiny_clip(world), world, eval_scenes=20, retrieval_scenes=10)
    assert out["zeroshot"]["n_all"] == 20 and set(out["retrieval"]) >= {"i2t_R@1", "t2i_R@5"}
    assert "0..19" in out["protocol"]
    with pytest.raises(ValueError, match="eval_scenes must be an int >= 1"):
        clip_recipe.evaluate(tiny_clip(world), world, eval_scenes=0)


def test_simclr_batches_step_and_evaluate():
    world = ShapeWorld(WorldConfig(canvas=32, max_objects=1))
    preset = simclr_recipe.PRESETS["tiny"]()
    torch.manual_seed(0)
    encoder = simclr_recipe.build_model(preset)
    source = simclr_recipe.batches(world, encoder, TrainConfig(batch_size=8))
    v1, v2 = source(1)
    assert v1.shape == v2.shape == (8, 3, 32, 32) and not torch.equal(v1, v2)
    again = source(1)
    assert torch.equal(again[0], v1) and torch.equal(again[1], v2)      # pure in (step, rank)
    assert not torch.equal(source(2)[0], v1)
    assert source(1, 1, 2)[0].shape == (4, 3, 32, 32)
    loss, metrics = simclr_recipe.step(encoder, (v1, v2))
    assert loss.dim() == 0 and math.isfinite(float(loss.detach())) and metrics == {}
    again_loss = simclr_recipe.make_step(0.2)(encoder, (v1, v2))[0]
    assert float(loss.detach()) == pytest.approx(float(again_loss.detach()))
    out = simclr_recipe.evaluate(encoder, world, n=60)
    assert out["n_test"] == 20 and 0 <= out["probe_colour"] <= 1 and 0 <= out["probe_shape"] <= 1
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        simclr_recipe.make_step(0)
    with pytest.raises(ValueError, match="n must be an int >= 6, got 3"):
        simclr_recipe.evaluate(encoder, world, n=3)
    with pytest.raises(TypeError, match="augment must be an AugmentConfig, got dict"):
        simclr_recipe.SimCLRBatches(world, 8, augment={})
    with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
        simclr_recipe.SimCLRBatches(world, 1)
    rebuilt = simclr_recipe.model_from_config(
        __import__("dataclasses").asdict(preset.model))
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(
        p.numel() for p in encoder.parameters())


def test_importing_the_registry_is_cheap():
    import subprocess
    import sys

    code = ("import sys, vlm_course.recipes as r; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(sorted(r.RECIPES))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_batch_sources_use_the_options_and_defaults_they_are_given(world):
    """Mutation-testing survivors: an ignored ``augment``, a changed default seed, a batch size
    check that lets floats and bools through."""
    from vlm_course.objectives.augment import AugmentConfig

    identity = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                             jitter_p=0.0, grayscale_p=0.0)
    world32 = ShapeWorld(WorldConfig(canvas=32, max_objects=1))
    cfg = TrainConfig(batch_size=4)
    v1, v2 = simclr_recipe.batches(world32, None, cfg, augment=identity)(1)
    images = world32.images("train", range(4, 8))
    torch.testing.assert_close(v1, images, rtol=0, atol=1e-6)
    torch.testing.assert_close(v2, images, rtol=0, atol=1e-6)
    assert not torch.allclose(simclr_recipe.batches(world32, None, cfg)(1)[0], images)
    model = tiny_clip(world)
    default = clip_recipe.ClipBatches(world, model.tokenize, 4)(0)[1]["input_ids"]
    seeded = clip_recipe.batches(world, model, TrainConfig(batch_size=4, seed=0))(0)[1]
    assert torch.equal(default, seeded["input_ids"])
    for bad in (8.0, True):
        with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
            clip_recipe.ClipBatches(world, model.tokenize, bad)
        with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
            simclr_recipe.SimCLRBatches(world32, bad)


def test_batch_sources_pass_split_seed_and_sizes_through(world):
    """More mutation-testing survivors: split/seed dropped on the way, off-by-one size bounds,
    default shard arguments, the vocabulary of a non-default world."""
    model = tiny_clip(world)
    source = clip_recipe.ClipBatches(world, model.tokenize, 2)             # 2 is enough
    torch.testing.assert_close(source(0)[0], world.images("train", range(2)), rtol=0, atol=0)
    assert source.indices(3) == range(6, 8)
    val = clip_recipe.batches(world, model, TrainConfig(batch_size=4), split="val")(0)[0]
    torch.testing.assert_close(val, world.images("val", range(4)), rtol=0, atol=0)
    with pytest.raises(TypeError, match="seed: expected an int >= 0"):
        clip_recipe.ClipBatches(world, model.tokenize, 4, seed=-1)         # at construction
    world32 = ShapeWorld(WorldConfig(canvas=32, max_objects=1))
    pair = simclr_recipe.SimCLRBatches(world32, 2)(0)
    assert pair[0].shape == (2, 3, 32, 32)
    s0 = simclr_recipe.batches(world32, None, TrainConfig(batch_size=4, seed=0))(0)[0]
    s1 = simclr_recipe.batches(world32, None, TrainConfig(batch_size=4, seed=1))(0)[0]
    assert not torch.equal(s0, s1)
    val32 = simclr_recipe.batches(world32, None, TrainConfig(batch_size=4), split="val",
                                  augment=simclr_recipe.AugmentConfig(
                                      crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                                      jitter_p=0.0, grayscale_p=0.0))(0)[0]
    torch.testing.assert_close(val32, world32.images("val", range(4)), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got True"):
        simclr_recipe.make_step(True)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got inf"):
        simclr_recipe.make_step(float("inf"))
    hexagons = WorldConfig(shapes=("circle", "hexagon"), colours=("red", "blue"))
    assert "hexagon" in clip_recipe.shapeworld_vocab(hexagons)
    assert "hexagon" not in clip_recipe.shapeworld_vocab(WorldConfig())
