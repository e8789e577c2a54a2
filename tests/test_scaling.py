"""Chapter 12: the finite pool of ClipBatches, the SigLIP model and recipe, the scaling sweep's
protocol and the published numbers."""

import math
import re
from pathlib import Path

import pytest
import torch

from vlm_course.evaluation import published
from vlm_course.models.clip import CLIP
from vlm_course.models.siglip import SigLIP, SigLIPConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.objectives.contrastive import siglip_loss
from vlm_course.recipes import clip as clip_recipe
from vlm_course.recipes import get
from vlm_course.recipes import siglip as siglip_recipe
from vlm_course.recipes.scaling import ScalingPoint, build, run_point, world_config
from vlm_course.training.loop import TrainConfig, train
from vlm_course.world import ShapeWorld, WorldConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig.tiny())


def tiny_siglip(world, seed=0):
    torch.manual_seed(seed)
    return SigLIP(SigLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                                   heads=2),
                                     TextConfig(width=16, layers=1, heads=2, context_length=24),
                                     clip_recipe.shapeworld_vocab(world.cfg)))


# ----------------------------------------------------------------- ClipBatches(scenes=N)
def test_pool_cycles_through_n_distinct_scenes(world):
    model = tiny_siglip(world)
    source = clip_recipe.ClipBatches(world, model.tokenize, 4, scenes=6, seed=3)
    seen = [i for step in range(6) for i in source.indices(step)]        # 24 positions
    assert len(set(seen)) == 6 and seen[:6] == seen[6:12] == seen[12:18]
    assert seen[:6] == source.pool and len(source.pool) == 6
    # nested: a smaller pool is the start of a larger one with the same seed
    big = clip_recipe.ClipBatches(world, model.tokenize, 4, scenes=40, seed=3)
    assert big.pool[:6] == source.pool
    other = clip_recipe.ClipBatches(world, model.tokenize, 4, scenes=6, seed=4)
    assert other.pool != source.pool
    # a repeated scene keeps its image and its caption
    a, b = source(0), source(3)                     # positions 0..3 and 12..15 = pool 0..3
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert torch.equal(a[1]["input_ids"], b[1]["input_ids"])
    # the shards of two ranks together are the single-process batch
    assert source.indices(1, 0, 2) + source.indices(1, 1, 2) == source.indices(1)
    # without a pool: unchanged (fresh scenes s*B .. s*B + B - 1)
    assert clip_recipe.ClipBatches(world, model.tokenize, 4).indices(2) == range(8, 12)
    via_batches = clip_recipe.batches(world, model, TrainConfig(batch_size=4, seed=3), scenes=6)
    assert via_batches.pool == source.pool


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "8", clip_recipe.POOL_RANGE + 1])
def test_pool_size_is_checked(world, bad):
    model = tiny_siglip(world)
    with pytest.raises(ValueError, match=re.escape("scenes must be None or an int in [2, ")):
        clip_recipe.ClipBatches(world, model.tokenize, 4, scenes=bad)


# ----------------------------------------------------------------- SigLIP
def test_siglip_model_adds_a_bias_with_siglip_initial_values(world):
    model = tiny_siglip(world)
    assert isinstance(model, CLIP)
    assert float(model.logit_bias.detach()) == -10.0
    assert math.isclose(float(model.logit_scale.detach()), math.log(10.0), rel_tol=1e-6)
    names = [n for n, _ in model.named_parameters()]
    assert "logit_bias" in names
    with pytest.raises(TypeError, match="config must be a SigLIPConfig, got CLIPConfig"):
        SigLIP(clip_recipe.PRESETS["tiny"]().model)
    again = siglip_recipe.model_from_config(model.config.to_dict())
    assert isinstance(again, SigLIP) and isinstance(again.config, SigLIPConfig)


def test_siglip_step_is_the_sigmoid_loss_and_trains_every_parameter(world):
    model = tiny_siglip(world)
    batch = clip_recipe.ClipBatches(world, model.tokenize, 8)(0)
    loss, metrics = siglip_recipe.step(model, batch)
    img, txt, scale = model(*batch)
    torch.testing.assert_close(loss, siglip_loss(img, txt, scale, model.logit_bias))
    assert metrics["logit_bias"] == -10.0 and math.isclose(metrics["logit_scale"], 10.0,
                                                           rel_tol=1e-5)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert float(model.logit_bias.grad) != 0.0
    # a few steps through the one training loop lower the loss
    model = tiny_siglip(world)
    cfg = TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup_steps=3, checkpoint_every=30)
    history = train(model, siglip_recipe.batches(world, model, cfg, scenes=32),
                    siglip_recipe.step, cfg, after_step=siglip_recipe.after_step)
    assert history[-1]["loss"] < history[0]["loss"]
    assert get("siglip") is siglip_recipe
    preset = siglip_recipe.PRESETS["tiny"]()
    assert isinstance(preset.model, SigLIPConfig)
    assert preset.train == clip_recipe.PRESETS["tiny"]().train


# ----------------------------------------------------------------- the sweep's protocol
@pytest.mark.parametrize("kwargs, message", [
    ({"objective": "mae"}, "objective must be one of ['clip', 'siglip'], got 'mae'"),
    ({"width": 24}, "width must be a multiple of 16 in [16, 256], got 24"),
    ({"width": 512}, "width must be a multiple of 16 in [16, 256], got 512"),
    ({"scenes": 1}, "scenes must be None or an int >= 2, got 1"),
    ({"batch_size": 1}, "batch_size must be an int >= 2, got 1"),
    ({"samples": 100}, "samples must be a positive multiple of batch_size=64, got 100"),
    ({"seed": -1}, "seed must be an int >= 0, got -1"),
    ({"lr": 0}, "lr must be a number > 0, got 0"),
])
def test_scaling_point_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ScalingPoint(**kwargs)


def test_scaling_point_builds_the_model_it_names():
    point = ScalingPoint(objective="siglip", width=48, batch_size=16, samples=64, seed=2)
    assert point.steps == 4
    recipe, model, config = build(point)
    assert recipe is siglip_recipe and isinstance(model, SigLIP)
    assert model.config.embed_dim == 48 and model.config.vision.width == 48
    assert model.config.text.width == 48 and model.config.vision.heads == 3
    assert model.config.image_size == world_config().canvas
    assert (config.steps, config.batch_size, config.seed) == (4, 16, 2)
    _, again, _ = build(point)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values(), strict=True))


def test_run_point_returns_the_row_and_is_deterministic():
    point = ScalingPoint(width=16, scenes=32, batch_size=8, samples=48, seed=1)
    row = run_point(point, eval_scenes=40, retrieval_scenes=20)
    again = run_point(point, eval_scenes=40, retrieval_scenes=20)
    for key in ("zs_colour_shape", "zs_heldout", "zs_colour", "zs_shape", "r1_i2t", "r1_t2i",
                "final_loss"):
        assert row[key] == again[key], key
        assert math.isfinite(row[key])
    assert row["steps"] == 6 and row["scenes"] == 32 and row["parameters"] > 0
    assert 0 <= row["zs_colour_shape"] <= row["zs_colour"] <= 1
    with pytest.raises(TypeError, match="point must be a ScalingPoint, got dict"):
        run_point(point.to_dict())
    with pytest.raises(ValueError, match="eval_scenes must be an int >= 1, got 0"):
        run_point(point, eval_scenes=0)


# ----------------------------------------------------------------- published numbers
def test_every_published_row_has_a_source_and_a_known_citation():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    assert len(published.PUBLISHED) >= 8
    for row in published.PUBLISHED:
        assert row.key in keys, f"{row.model}: {row.key} is not in book/references.bib"
        assert len(row.source) > 20 and row.model and row.data, row
        assert 0 < row.top1 < 100 and row.pairs >= 1e6, row
    # every source carries a doi, an arXiv id or a url (tests/test_references.py checks the form)
    for key in {r.key for r in published.PUBLISHED}:
        entry = bib[bib.index("{" + key + ","):].split("\n}\n")[0]
        assert re.search(r"^\s*(doi|url|eprint)\s*=", entry, re.M), f"{key}: add a doi or url"


def test_published_families():
    assert [r.model for r in published.rows("OpenCLIP (LAION-400M)")] == [
        "OpenCLIP ViT-B/32", "OpenCLIP ViT-B/16", "OpenCLIP ViT-L/14"]
    assert len(published.rows()) == len(published.PUBLISHED)
    with pytest.raises(ValueError, match="family must be one of"):
        published.rows("GPT")
