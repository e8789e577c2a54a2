"""Chapter 05's recipes (mae, multimodal): batch sources, steps, baselines, evaluations, the CLI."""

from __future__ import annotations

import pytest
import torch

from vlm_course.models.mae import MAEConfig, MaskedAutoencoder
from vlm_course.models.multimodal import MultimodalConfig, MultimodalTransformer
from vlm_course.models.vit import ViTConfig
from vlm_course.recipes import mae as mae_recipe
from vlm_course.recipes import multimodal as mm_recipe
from vlm_course.text import Tokenizer
from vlm_course.training.loop import TrainConfig
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig(canvas=48, max_objects=1))


def small_mae():
    torch.manual_seed(0)
    enc = ViTConfig(image_size=48, patch_size=8, width=32, layers=1, heads=4)
    return MaskedAutoencoder(MAEConfig(encoder=enc, decoder_width=16, decoder_layers=1))


def small_multimodal(world):
    torch.manual_seed(0)
    vocab = Tokenizer.from_world(world.cfg).to_dict()["words"]
    return MultimodalTransformer(MultimodalConfig.tiny(vocab, width=32, layers=1))


def test_mae_batches_are_deterministic_and_sharded(world):
    model = small_mae()
    source = mae_recipe.batches(world, model, TrainConfig(steps=5, batch_size=8, seed=3))
    a, b = source(2), source(2)
    assert a["images"].shape == (8, 3, 48, 48) and a["noise"].shape == (8, 36)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["noise"], b["noise"])
    assert not torch.equal(source(3)["noise"], a["noise"])
    halves = [source(2, rank, 2)["images"] for rank in (0, 1)]
    assert torch.equal(torch.cat(halves), a["images"])  # the ranks split the global batch
    loss, metrics = mae_recipe.step(model, a)
    torch.testing.assert_close(loss, model(a["images"], noise=a["noise"]).loss)
    assert metrics == {} and torch.isfinite(loss)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        mae_recipe.MAEBatches(world, 0, 36)
    with pytest.raises(TypeError, match="world must be a ShapeWorld"):
        mae_recipe.MAEBatches("world", 4, 36)


def test_mask_baselines_by_hand():
    patches = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [0.0, 0.0]]])  # (B=1, N=3, K=2)
    mask = torch.tensor([[0.0, 0.0, 1.0]])  # patch 2 removed
    out = mae_recipe.mask_baselines(patches, mask, torch.tensor([0.5, 0.5]))
    assert out["mean_patch"] == pytest.approx(0.25)  # predict 0.5 where the truth is 0
    assert out["visible_mean"] == pytest.approx(4.0)  # predict (1 + 3) / 2 = 2
    with pytest.raises(ValueError, match="mask removes every patch"):
        mae_recipe.mask_baselines(patches, torch.ones(1, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="patches must be"):
        mae_recipe.mask_baselines(patches[0], mask, torch.zeros(2))


def test_mae_evaluate_reports_losses_baselines_and_probes(world):
    out = mae_recipe.evaluate(small_mae(), world, n=16, ratios=(0.75,), probe_train=40,
                              probe_test=20)
    r = out["ratio_0.75"]
    assert set(r) == {"mae_loss", "mean_patch", "visible_mean", "loss_over_best_baseline"}
    assert r["loss_over_best_baseline"] == pytest.approx(
        r["mae_loss"] / min(r["mean_patch"], r["visible_mean"]))
    for key in ("probe_shape_mae", "probe_shape_random_init", "probe_colour_mae"):
        assert 0.0 <= out[key] <= 1.0
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        mae_recipe.evaluate(small_mae(), world, n=0)


def test_multimodal_batches_masks_and_step(world):
    model = small_multimodal(world)
    cfg = TrainConfig(steps=5, batch_size=16, seed=1)
    source = mm_recipe.batches(world, model, cfg, text_probability=0.5, hide_image=0.25)
    batch = source(0)
    assert batch["images"].shape == (16, 3, 48, 48) and batch["image_mask"].shape == (16, 9)
    again = source(0)
    for key, value in batch.items():
        assert torch.equal(value, again[key]), key
    chosen = batch["labels"] != -100
    assert torch.equal(batch["labels"][chosen], batch["input_ids"][chosen])
    assert not (chosen & (batch["attention_mask"] == 0)).any()  # padding is never chosen
    many = torch.cat([source(s)["image_mask"] for s in range(20)])
    hidden = (many.sum(1) == 9).float().mean()
    assert 0.1 < hidden < 0.45  # hide_image=0.25 of the images fully hidden
    assert many[many.sum(1) < 9].mean() < 0.35  # the others: ratio uniform in [0, 0.5]
    loss, metrics = mm_recipe.step(model, batch)
    assert torch.isfinite(loss) and set(metrics) == {"image", "text", "caption"}
    assert loss.item() == pytest.approx(sum(metrics.values()), rel=1e-5)
    with pytest.raises(ValueError, match="max_image_ratio must lie in"):
        mm_recipe.MultimodalBatches(world, model, 4, max_image_ratio=1.5)


def test_multimodal_evaluations_on_an_untrained_model(world):
    model = small_multimodal(world).eval()
    images, captions = world.pairs("test", range(24))
    acc, count = mm_recipe.colour_recovery(model, images, captions, world.cfg.colours)
    assert 0.0 <= acc <= 1.0 and 0 < count <= 24
    with pytest.raises(ValueError, match="none names a colour"):
        mm_recipe.colour_recovery(model, images[:1], ["there is one object"], world.cfg.colours)
    share, texts = mm_recipe.caption_truth(model, world.batch("test", range(4), masks=False),
                                           world.cfg)
    assert 0.0 <= share <= 1.0 and len(texts) == 4
    out = mm_recipe.evaluate(model, world, n=8)
    assert out["colour_chance"] == 1 / 8 and 0.0 <= out["captions_true_with_image"] <= 1.0


@pytest.mark.parametrize("recipe", ["mae", "multimodal"])
def test_cli_trains_the_preset_model_for_two_steps(recipe, tmp_path):
    from vlm_course.cli import run

    model, history = run(recipe, "tiny", steps=2, batch_size=8, out_dir=tmp_path / recipe)
    assert [r["step"] for r in history] == [0, 1]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in history)
    assert (tmp_path / recipe / "run.json").exists()
