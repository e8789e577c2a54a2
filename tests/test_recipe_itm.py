"""The ITM recipe (chapter 06): batch source, step, presets, evaluation."""

import math

import pytest
import torch

from vlm_course.models.clip import CLIPConfig
from vlm_course.models.itm import ITMConfig, ITMModel
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.recipes import clip as clip_recipe
from vlm_course.recipes import itm as itm_recipe
from vlm_course.training.loop import TrainConfig, train
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig(canvas=32, min_objects=2, max_objects=2))


def tiny_itm(world, seed=0, freeze=True):
    torch.manual_seed(seed)
    clip = CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                          heads=2),
                            TextConfig(width=16, layers=1, heads=2, context_length=24),
                            clip_recipe.shapeworld_vocab(world.cfg))
    return ITMModel(ITMConfig.for_clip(clip, freeze_towers=freeze, width=16, layers=1, heads=2))


def test_batches_are_pure_hold_the_truth_and_shard_by_rank(world):
    model = tiny_itm(world)
    source = itm_recipe.batches(world, model, TrainConfig(batch_size=8, seed=3))
    batch = source(2)
    again = source(2)
    assert torch.equal(batch["tokens"]["input_ids"], again["tokens"]["input_ids"])
    assert torch.equal(batch["positives"], again["positives"]) and batch["seed"] == again["seed"]
    B, C = batch["positives"].shape
    assert B == batch["n_pairs"] == 8 and C > 8, "word swaps join the candidate pool"
    assert batch["positives"][torch.arange(8), torch.arange(8)].all(), "own captions are true"
    torch.testing.assert_close(batch["images"], world.images("train", range(16, 24)))
    halves = [source(2, r, 2) for r in range(2)]
    own = torch.cat([h["tokens"]["input_ids"][:4] for h in halves])
    assert torch.equal(own, batch["tokens"]["input_ids"][:8]), "a scene's caption ignores ranks"
    assert halves[0]["seed"] != halves[1]["seed"] != source(3)["seed"]
    plain = itm_recipe.ITMBatches(world, model.tokenize, 8, swaps=False)(2)
    assert plain["positives"].shape == (8, 8)


class Spy(torch.nn.Module):
    """Wraps a model like DDP does (``unwrap`` finds ``.module``) and records the pairs scored."""

    def __init__(self, inner):
        super().__init__()
        self.module = inner
        self.pairs = None

    def forward(self, images, tokens, image_index, text_index):
        self.pairs = (image_index, text_index)
        return self.module(images, tokens, image_index, text_index)


def test_step_never_pairs_a_true_caption_as_a_negative(world):
    model = tiny_itm(world)
    for negatives in ("hard", "random"):
        batch = itm_recipe.ITMBatches(world, model.tokenize, 16, negatives=negatives)(0)
        spy = Spy(model)
        loss, metrics = itm_recipe.step(spy, batch)
        assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
        i, t = spy.pairs
        truth = batch["positives"][i, t]
        assert truth[:16].all() and not truth[16:].any(), negatives
        assert metrics["negatives_per_pair"] == pytest.approx((len(i) - 16) / 16)
        assert 0 <= metrics["itm_accuracy"] <= 1 and 0 <= metrics["swap_negatives"] <= 1


def test_hard_negatives_follow_the_towers_similarity(world):
    """With the towers' scale pushed up, the sampler picks each image's most similar false
    caption; random negatives do not."""
    model = tiny_itm(world)
    with torch.no_grad():
        model.clip.logit_scale.fill_(math.log(1e4))
    batch = itm_recipe.ITMBatches(world, model.tokenize, 16)(0)
    with torch.no_grad():
        t = model.towers(batch["images"], batch["tokens"])
        sim = (t["image_emb"] @ t["text_emb"].T).masked_fill(batch["positives"], -2)
    best = sim.argmax(1)
    picks = {}
    for negatives in ("hard", "random"):
        batch["negatives"] = negatives
        hits = 0
        for seed in range(10):
            batch["seed"] = seed
            spy = Spy(model)
            itm_recipe.step(spy, batch)
            hits += int((spy.pairs[1][16:32] == best).sum())
        picks[negatives] = hits / 160
    assert picks["hard"] > 0.9 > 0.3 > picks["random"], picks


def test_training_moves_only_the_fusion_encoder_and_lowers_the_loss(world):
    model = tiny_itm(world)
    clip_before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    fusion_before = {k: v.clone() for k, v in model.fusion.state_dict().items()}
    cfg = TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup_steps=3)
    history = train(model, itm_recipe.batches(world, model, cfg), itm_recipe.step, cfg)
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < first - 0.02, (first, last)
    for k, v in model.clip.state_dict().items():
        assert torch.equal(v, clip_before[k]), f"frozen tower parameter {k} changed"
    assert any(not torch.equal(v, fusion_before[k]) for k, v in model.fusion.state_dict().items())


def test_random_warm_up_then_hard_negatives(world):
    """Before ``random_steps`` a hard-negative source yields exactly the random source's batches
    (so the two presets share their first steps); from then on only ``negatives`` differs."""
    tokenize = tiny_itm(world).tokenize
    hard = itm_recipe.ITMBatches(world, tokenize, 8, negatives="hard", random_steps=2)
    rand = itm_recipe.ITMBatches(world, tokenize, 8, negatives="random")
    for s, expected in ((0, "random"), (1, "random"), (2, "hard"), (5, "hard")):
        a, b = hard(s), rand(s)
        assert a["negatives"] == expected, s
        assert a.keys() == b.keys() and a["seed"] == b["seed"] and a["n_pairs"] == b["n_pairs"]
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["positives"],
                                                                     b["positives"])
        for k in a["tokens"]:
            assert torch.equal(a["tokens"][k], b["tokens"][k]), (s, k)


def test_presets_start_from_the_shipped_clip():
    from vlm_course import pretrained

    preset = itm_recipe.PRESETS["tiny"]()
    assert preset.options == {"negatives": "hard", "swaps": True,
                              "random_steps": itm_recipe.RANDOM_STEPS}
    assert itm_recipe.PRESETS["tiny_random"]().options == {"negatives": "random", "swaps": True,
                                                           "random_steps": 0}
    assert preset.train == itm_recipe.PRESETS["tiny_random"]().train
    assert preset.world.min_objects == preset.world.max_objects == 2
    assert preset.world.canvas == preset.model.clip.image_size
    torch.manual_seed(0)
    model = itm_recipe.build_model(preset)
    shipped = pretrained.load("clip_tiny_shapeworld", device="cpu")
    for k, v in shipped.state_dict().items():
        assert torch.equal(model.clip.state_dict()[k], v), k
    rebuilt = itm_recipe.model_from_config(preset.model.to_dict())
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel()
                                                               for p in model.parameters())


def test_evaluate_reports_winoground_for_itm_and_its_clip(world):
    out = itm_recipe.evaluate(tiny_itm(world), world, n=4)
    assert set(out["winoground"]) == set(out["winoground_clip"]) == {"binding", "relation",
                                                                    "count"}
    assert out["winoground"]["binding"]["n"] == 4 and "4 items" in out["protocol"]
    with pytest.raises(ValueError, match="n"):
        itm_recipe.evaluate(tiny_itm(world), world, n=0)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"world": "w"}, TypeError, "world"), ({"tokenize": None}, TypeError, "tokenize"),
    ({"batch_size": 1}, ValueError, "batch_size"), ({"negatives": "easy"}, ValueError,
                                                     "negatives"),
    ({"random_steps": -1}, ValueError, "random_steps"),
    ({"random_steps": 2.0}, ValueError, "random_steps"),
])
def test_batch_source_errors(world, kwargs, error, name):
    args = {"world": world, "tokenize": tiny_itm(world).tokenize, "batch_size": 8, **kwargs}
    with pytest.raises(error, match=name):
        itm_recipe.ITMBatches(**args)
