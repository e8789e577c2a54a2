"""Chapter 05's shipped checkpoints: cards equal today's presets, weights load, and a fresh
sample (never used for the card) re-measures the lessons the notebook asserts."""

import dataclasses
import json

import pytest
import torch

from vlm_course import pretrained
from vlm_course.training.loop import json_config
from vlm_course.world import ShapeWorld, WorldConfig

NAMES = {"mae_tiny_shapeworld": "mae", "multimodal_tiny_shapeworld": "multimodal"}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_card_is_the_tiny_preset(name):
    from vlm_course.recipes import get

    card = pretrained.card(name)
    assert card["recipe"] == NAMES[name] and card["preset"] == "tiny"
    preset = get(NAMES[name]).PRESETS["tiny"]()
    assert card["model_config"] == json.loads(json.dumps(json_config(preset.model)))
    assert WorldConfig.from_dict(card["world_config"]) == preset.world
    assert card["train_config"] == json.loads(json.dumps(dataclasses.asdict(preset.train)))
    for key in ("command", "seed", "steps", "wall_time_s", "hardware", "sha256", "evaluation"):
        assert key in card, key


def test_mae_beats_the_mean_patch_on_fresh_scenes():
    from vlm_course.recipes.mae import mask_baselines

    card = pretrained.card("mae_tiny_shapeworld")
    mae = pretrained.load("mae_tiny_shapeworld", device="cpu")
    world = ShapeWorld(WorldConfig.from_dict(card["world_config"]))
    images = world.images("test", range(5000, 5300))
    mean_patch = mae.patchify(world.images("train", range(1024))).mean((0, 1))
    with torch.no_grad():
        out = mae(images, 0.75, generator=torch.Generator().manual_seed(7))
    base = mask_baselines(mae.patchify(images), out.mask, mean_patch)
    assert float(out.loss) < 0.75 * min(base.values())


def test_multimodal_captions_need_the_image_on_fresh_scenes():
    from vlm_course.recipes.multimodal import caption_truth

    card = pretrained.card("multimodal_tiny_shapeworld")
    model = pretrained.load("multimodal_tiny_shapeworld", device="cpu")
    cfg = WorldConfig.from_dict(card["world_config"])
    scenes = ShapeWorld(cfg).batch("test", range(5000, 5200), masks=False)
    with_image, _ = caption_truth(model, scenes, cfg)
    text_only, _ = caption_truth(model, scenes, cfg, hide_image=True)
    assert with_image > text_only + 0.3
