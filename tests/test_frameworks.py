"""Chapter 07: typos, the two-leg recipe, the comparison report."""

import pytest
import torch

from vlm_course.evaluation.frameworks import framework_report, zeroshot_misspelt
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.itm import ITMConfig, ITMModel
from vlm_course.models.one_tower import OneTower, OneTowerConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.two_leg import TwoLegConfig, TwoLegModel
from vlm_course.models.vit import ViTConfig
from vlm_course.recipes import clip as clip_recipe
from vlm_course.recipes import get, two_leg
from vlm_course.recipes.frameworks import FRAMEWORKS
from vlm_course.text.typos import misspell
from vlm_course.training.loop import TrainConfig
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig(canvas=32, max_objects=2))


def tiny_clip(world):
    torch.manual_seed(0)
    return CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                          heads=2),
                            TextConfig(width=16, layers=1, heads=2, context_length=24),
                            clip_recipe.shapeworld_vocab(world.cfg))


def test_misspell_is_one_deterministic_typo():
    assert [misspell("circle", k) for k in ("swap", "drop", "double")] == \
        ["cicrle", "cicle", "cirrcle"]
    assert misspell("green") == "grene" and misspell("red") == "rde" and misspell("an") == "an"
    with pytest.raises(ValueError, match="kind: expected one of"):
        misspell("red", "shout")
    with pytest.raises(TypeError, match="word: expected a str, got int"):
        misspell(3)


def test_the_three_presets_share_world_budget_and_seed():
    presets = [get(r).PRESETS[p]() for r, p in FRAMEWORKS.values()]
    assert all(p.world == presets[0].world for p in presets)
    assert all(p.train == presets[0].train for p in presets)
    assert presets[0].world.canvas == 48


def test_two_leg_presets_warm_up_on_random_negatives_and_add_mlm():
    """Chapter 06's warm-up (random ITM negatives first) is reused; ``tiny`` adds MLM,
    ``tiny_itm`` is the same run without it."""
    from vlm_course.recipes.itm import RANDOM_STEPS

    full, ablation = two_leg.PRESETS["tiny"](), two_leg.PRESETS["tiny_itm"]()
    assert full.options["random_steps"] == ablation.options["random_steps"] == RANDOM_STEPS
    assert 0 < RANDOM_STEPS < full.train.steps, "hard negatives after the warm-up"
    assert full.options["mlm_probability"] == two_leg.MLM_PROBABILITY > 0
    assert full.options["swaps"] is ablation.options["swaps"] is True
    assert ablation.options["mlm_probability"] == 0.0
    assert full.model.mlm and not ablation.model.mlm
    assert full.train == ablation.train and full.world == ablation.world
    torch.manual_seed(0)
    model = two_leg.build_model(full)
    assert isinstance(model, TwoLegModel) and model.mlm_head is not None
    assert model.mlm_head.out_features == model.config.clip.text.vocab_size
    assert two_leg.build_model(ablation).mlm_head is None


def test_two_leg_config_round_trips_and_reads_an_itm_config(world):
    config = TwoLegConfig.for_clip(tiny_clip(world), freeze_towers=False, width=16, layers=1,
                                   heads=2)
    assert config.mlm is True
    assert TwoLegConfig.from_dict(config.to_dict()) == config
    itm_dict = ITMConfig.for_clip(tiny_clip(world), width=16, layers=1, heads=2).to_dict()
    assert "mlm" not in itm_dict and TwoLegConfig.from_dict(itm_dict).mlm is False
    with pytest.raises(TypeError, match="config: expected a TwoLegConfig, got ITMConfig"):
        TwoLegModel(ITMConfig.for_clip(tiny_clip(world), width=16, layers=1, heads=2))
    no_head = TwoLegModel(TwoLegConfig.from_dict(itm_dict))
    with pytest.raises(RuntimeError, match="masked_word_logits: this model has no MLM head"):
        no_head.masked_word_logits(torch.zeros(1, 5, 16), torch.zeros(1, 3, 16))


def test_two_leg_batches_hold_the_clip_pairs_and_the_truth(world):
    model = ITMModel(ITMConfig.for_clip(tiny_clip(world), freeze_towers=False, width=16,
                                        layers=1, heads=2))
    cfg = TrainConfig(batch_size=24, seed=3)
    batch = two_leg.batches(world, model, cfg)(2)
    images, tokens = clip_recipe.batches(world, model.clip, cfg)(2)   # chapter 04's batch
    torch.testing.assert_close(batch["images"], images, rtol=0, atol=0)
    assert torch.equal(batch["tokens"]["input_ids"][:24], tokens["input_ids"])
    B, C = batch["positives"].shape
    assert B == 24 and C > 24, "word-swapped captions join the pool"
    assert batch["positives"][:, :24].diagonal().all(), "each scene's own caption is true of it"
    again = two_leg.batches(world, model, cfg)(2)
    assert torch.equal(again["positives"], batch["positives"])
    warm = two_leg.batches(world, model, cfg, random_steps=3)
    assert [warm(s)["negatives"] for s in (0, 2, 3)] == ["random", "random", "hard"]
    assert torch.equal(warm(2)["positives"], batch["positives"]), "only the negatives change"
    assert batch["negatives"] == "hard"
    every = two_leg.batches(world, model, cfg, swaps="all")(2)
    assert torch.equal(every["tokens"]["input_ids"][:24], tokens["input_ids"]), "same positives"
    assert every["positives"].shape[1] > C, "swaps of every caption of a scene join the pool"
    assert torch.equal(every["positives"][:, :24], batch["positives"][:, :24])
    with pytest.raises(ValueError, match="swaps: expected True, False or 'all', got 'some'"):
        two_leg.TwoLegBatches(world, model.tokenize, 4, swaps="some")
    with pytest.raises(ValueError, match="random_steps: expected an int >= 0, got -1"):
        two_leg.TwoLegBatches(world, model.tokenize, 4, random_steps=-1)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 2"):
        two_leg.TwoLegBatches(world, model.tokenize, 1)
    with pytest.raises(TypeError, match="world: expected a ShapeWorld or WorldConfig, got str"):
        two_leg.TwoLegBatches("w", model.tokenize, 4)


def two_leg_model(world, mlm=True):
    config = TwoLegConfig.for_clip(tiny_clip(world), freeze_towers=False, width=16, layers=1,
                                   heads=2)
    config.mlm = mlm
    return TwoLegModel(config)


def test_two_leg_batches_mask_the_scenes_captions_for_mlm(world):
    model = two_leg_model(world)
    cfg = TrainConfig(batch_size=24, seed=3)
    plain = two_leg.batches(world, model, cfg)(2)
    assert "masked_ids" not in plain
    batch = two_leg.batches(world, model, cfg, mlm_probability=0.4)(2)
    ids = batch["tokens"]["input_ids"][:24]
    masked, labels = batch["masked_ids"], batch["mlm_labels"]
    assert masked.shape == labels.shape == ids.shape
    chosen = labels != -100
    assert chosen.any() and torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen]), "only chosen words change"
    mask_id = model.clip.tokenizer.vocab.index("[MASK]")
    assert (masked[chosen] == mask_id).float().mean() > 0.5
    assert not chosen[ids <= 2].any(), "padding, [SOS] and [EOS] are never chosen"
    assert torch.equal(plain["positives"], batch["positives"]), "ITM's part is unchanged"
    again = two_leg.batches(world, model, cfg, mlm_probability=0.4)(2)
    assert torch.equal(again["masked_ids"], masked), "deterministic in the step"
    with pytest.raises(ValueError, match="mlm_probability: expected a number in \\[0, 1\\)"):
        two_leg.TwoLegBatches(world, model.tokenize, 4, mlm_probability=1.5, vocab=["a"])
    with pytest.raises(ValueError, match="vocab: expected the tokenizer's vocabulary"):
        two_leg.TwoLegBatches(world, model.tokenize, 4, mlm_probability=0.15)


def test_two_leg_step_adds_mlm_and_every_head_learns(world):
    model = two_leg_model(world).train()
    batch = two_leg.batches(world, model, TrainConfig(batch_size=8), mlm_probability=0.4)(0)
    loss, metrics = two_leg.step(model, batch)
    assert loss.item() == pytest.approx(metrics["contrastive"] + metrics["itm"]
                                        + metrics["mlm"], rel=1e-5)
    assert 0 <= metrics["mlm_accuracy"] <= 1
    loss.backward()
    for part in ("clip.visual", "clip.text", "fusion", "mlm_head", "clip.logit_scale"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert grads and all(g is not None for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, part
    with pytest.raises(RuntimeError, match="no MLM head"):
        two_leg.step(two_leg_model(world, mlm=False), batch)


def test_two_leg_step_trains_towers_and_fusion_together(world):
    model = two_leg_model(world, mlm=False).train()
    batch = two_leg.batches(world, model, TrainConfig(batch_size=8))(0)
    random_batch = dict(batch, negatives="random")
    loss, metrics = two_leg.step(model, random_batch)
    assert torch.isfinite(loss)
    model.zero_grad()
    loss, metrics = two_leg.step(model, batch)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(metrics["contrastive"] + metrics["itm"], rel=1e-5)
    loss.backward()
    for part in ("clip.visual", "clip.text", "fusion", "clip.logit_scale"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert grads and all(g is not None for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, part


def test_misspelt_names_are_all_unknown_to_a_vocabulary_but_not_to_pixels(world):
    """A word-level tokenizer maps each misspelt class name to [UNK]: the K class embeddings of
    the misspelt classifier are identical.  The one-tower model's are all different."""
    from vlm_course.evaluation.zeroshot import build_classifier, shapeworld_prompts

    names, templates = shapeworld_prompts(world.cfg, "shape")
    typos = [misspell(n) for n in names]
    clip = CLIP(tiny_clip(world)).eval()
    assert clip.tokenizer.unknown_words(typos) == sorted(set(typos)) or \
        set(clip.tokenizer.unknown_words(typos)) == set(typos)
    rows = build_classifier(clip, typos, templates)
    torch.testing.assert_close(rows, rows[:1].expand_as(rows))
    torch.manual_seed(0)
    one = OneTower(OneTowerConfig(vision=ViTConfig(image_size=32, patch_size=8, width=16,
                                                   layers=1, heads=2, output_dim=16))).eval()
    rows = build_classifier(one, typos, templates)
    assert torch.cdist(rows, rows)[~torch.eye(len(names), dtype=torch.bool)].min() > 0


def test_framework_report_columns_and_bad_inputs(world):
    torch.manual_seed(0)
    one = OneTower(OneTowerConfig(vision=ViTConfig(image_size=32, patch_size=8, width=16,
                                                   layers=1, heads=2, output_dim=16))).eval()
    report = framework_report(one, world, n_zeroshot=16, n_retrieval=8, n_winoground=2)
    assert set(report) == {"zeroshot", "misspelt", "retrieval", "winoground", "protocol"}
    assert set(report["zeroshot"]) == {"colour", "shape", "colour+shape"}
    assert set(report["retrieval"]) == {"i2t_R@1", "t2i_R@1"}
    assert set(report["winoground"]) == {"binding", "relation", "count"}
    assert set(report["misspelt"]["shape"]) == {"swap", "drop", "double", "mean"}
    assert report["misspelt"]["clean"]["shape"] == report["zeroshot"]["shape"]
    values = [*report["zeroshot"].values(), *report["retrieval"].values()]
    assert all(0 <= v <= 1 for v in values)
    with pytest.raises(ValueError, match="n_retrieval must be an int >= 1"):
        framework_report(one, world, n_retrieval=0)
    with pytest.raises(TypeError, match="world: expected a ShapeWorld or WorldConfig, got str"):
        framework_report(one, "world")
    with pytest.raises(ValueError, match="kinds: expected a non-empty list"):
        zeroshot_misspelt(one, world, 4, kinds=("typo",))
