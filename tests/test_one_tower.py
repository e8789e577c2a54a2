"""Chapter 07's one-tower model (CLIPPO in miniature): the text rasteriser and the shared tower."""

import numpy as np
import pytest
import torch

from vlm_course.models.one_tower import OneTower, OneTowerConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.objectives.contrastive import clip_loss
from vlm_course.text.rasterise import TextRasteriser, bundled_font
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def raster():
    return TextRasteriser(48, 7)


def test_rasteriser_is_deterministic_across_instances_and_cache(raster):
    text = "a large cyan cross left of a yellow circle"
    first = raster.render_one(text)
    fresh = TextRasteriser(48, 7, cache_size=0)
    np.testing.assert_array_equal(fresh.render_one(text), first)
    np.testing.assert_array_equal(fresh.render_one(text), first)    # no cache: drawn again
    assert raster.render_one(text) is first and raster.hits >= 1      # from the cache
    assert first.dtype == np.uint8 and first.shape == (48, 48) and first.max() == 255
    batch = raster([text, "a red circle"])
    assert batch.shape == (2, 3, 48, 48) and batch.dtype == torch.float32
    assert batch.min() >= 0 and batch.max() <= 1
    torch.testing.assert_close(batch[0, 1], torch.from_numpy(first.copy()).float() / 255)
    assert torch.equal(batch[:, 0], batch[:, 2])                      # grey: equal channels


def test_glyphs_are_distinct_and_typos_change_pixels(raster):
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    glyphs = np.stack([raster.render_one(c).astype(np.int32) for c in letters])
    assert (glyphs.reshape(len(letters), -1).sum(1) > 0).all(), "every glyph has ink"
    diff = np.abs(glyphs[:, None] - glyphs[None]).reshape(len(letters), len(letters), -1).sum(-1)
    off_diagonal = diff[~np.eye(len(letters), dtype=bool)]
    assert off_diagonal.min() > 0, "two characters render identically"
    circle, typo, square = (raster.render_one(t).astype(np.int32)
                            for t in ("a red circle", "a red cicrle", "a red square"))
    assert 0 < np.abs(circle - typo).sum() < np.abs(circle - square).sum()


def test_every_caption_and_prompt_of_the_world_fits(raster):
    from vlm_course.evaluation.zeroshot import shapeworld_prompts

    world = ShapeWorld(WorldConfig(canvas=48, max_objects=2))
    captions = [c for caps in world.batch("train", range(300), masks=False).captions for c in caps]
    for task in ("colour", "shape", "colour+shape"):
        names, templates = shapeworld_prompts(world.cfg, task)
        captions += [t.format(n) for t in templates for n in names]
    assert all(raster.fits(c) for c in captions), [c for c in captions if not raster.fits(c)][:3]
    long = " ".join(["triangle"] * 30)
    assert not raster.fits(long) and len(raster.lines(long)) > raster.max_lines
    assert raster.render_one(long).shape == (48, 48)                  # cut, not an error


def test_rasteriser_bad_inputs_name_the_argument(raster):
    with pytest.raises(ValueError, match=r"size: expected an int >= 8, got 4"):
        TextRasteriser(4)
    with pytest.raises(ValueError, match=r"font_size: expected an int >= 4, got 2"):
        TextRasteriser(48, 2)
    with pytest.raises(ValueError, match=r"cache_size: expected an int >= 0"):
        TextRasteriser(48, 8, cache_size=-1)
    with pytest.raises(FileNotFoundError, match=r"name: no font 'Nope.ttf'"):
        TextRasteriser(48, 8, font="Nope.ttf")
    with pytest.raises(TypeError, match=r"texts: expected a list of str, got int"):
        raster(3)
    with pytest.raises(TypeError, match=r"texts: expected a list of str, got list holding"):
        raster(["a", 3])
    with pytest.raises(TypeError, match=r"text: expected a str, got NoneType"):
        raster.render_one(None)
    assert bundled_font().name == "DejaVuSans.ttf"


def tiny_one_tower():
    torch.manual_seed(0)
    return OneTower(OneTowerConfig(vision=ViTConfig(image_size=48, patch_size=8, width=32,
                                                    layers=1, heads=2, output_dim=24)))


def test_the_tower_is_shared_one_parameter_set_gradients_from_both_inputs():
    model = tiny_one_tower()
    vit = sum(p.numel() for p in model.visual.parameters())
    assert sum(p.numel() for p in model.parameters()) == vit + 1      # + logit_scale only
    images = torch.rand(4, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    tokens = model.tokenize(["a red circle", "a blue square", "two objects", "a green star"])
    # the text path is the image path applied to the rendered caption
    torch.testing.assert_close(model.encode_text(tokens, normalize=False),
                               model.visual(tokens["pixels"]), rtol=0, atol=0)
    grads = {}
    for side in ("image", "text"):
        model.zero_grad()
        emb = (model.encode_image(images, normalize=False) if side == "image"
               else model.encode_text(tokens, normalize=False))
        (emb * torch.randn_like(emb)).sum().backward()
        grads[side] = {n: p.grad.clone() for n, p in model.visual.named_parameters()}
        assert all(g.abs().sum() > 0 for g in grads[side].values()), side
    assert not torch.equal(grads["image"]["patch_embed.weight"],
                           grads["text"]["patch_embed.weight"])
    model.zero_grad()                                  # the contrastive loss: both at once
    img, txt, scale = model(images, tokens)
    clip_loss(img, txt, scale).backward()
    for name, p in model.visual.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_one_tower_config_round_trip_and_bad_inputs():
    cfg = OneTowerConfig.tiny()
    assert OneTowerConfig.from_dict(cfg.to_dict()) == cfg and cfg.embed_dim == 64
    model = tiny_one_tower()
    with pytest.raises(TypeError, match="config: expected a OneTowerConfig, got dict"):
        OneTower({})
    with pytest.raises(TypeError, match="vision: expected a ViTConfig"):
        OneTowerConfig(vision={})
    with pytest.raises(ValueError, match="font_size: expected an int >= 4, got 1"):
        OneTowerConfig(font_size=1)
    with pytest.raises(TypeError, match=r"tokens: expected the dict returned by tokenize\(\)"):
        model.encode_text(["a red circle"])
    with pytest.raises(TypeError, match="images: expected a float tensor"):
        model.encode_image(torch.zeros(1, 3, 48, 48, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 48, 48\)"):
        model.encode_image(torch.rand(1, 3, 32, 32))
