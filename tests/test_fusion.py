"""Fusion encoder and ITM model (chapter 06): shapes, masks, invariants, errors."""

import pytest
import torch

from vlm_course.models.fusion import FusionConfig, FusionEncoder
from vlm_course.models.itm import ITMConfig, ITMModel


def _inputs(B=3, L=7, N=10, Dt=16, Di=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(B, L, Dt, generator=g)
    image = torch.randn(B, N, Di, generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    mask[0, 4:] = 0
    mask[2, 2:] = 0
    return text, image, mask


def _encoder(seed=0):
    torch.manual_seed(seed)
    return FusionEncoder(FusionConfig(image_dim=24, text_dim=16, width=32, layers=2, heads=4))


def test_shapes_stages_and_attention():
    model = _encoder().eval()
    text, image, mask = _inputs()
    feats, maps = model.forward_features(text, image, mask, return_attention=True)
    assert feats.shape == (3, 7, 32)
    assert len(maps) == 2
    self_w, cross_w = maps[0]
    assert self_w.shape == (3, 4, 7, 7) and cross_w.shape == (3, 4, 7, 10)
    torch.testing.assert_close(cross_w.sum(-1), torch.ones(3, 4, 7))
    assert (self_w[0, :, :, 4:] == 0).all(), "a padded text token received attention"
    logits = model(text, image, mask)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, model.forward_head(feats))


def test_padding_does_not_leak():
    model = _encoder().eval()
    text, image, mask = _inputs()
    out = model(text, image, mask)
    text2 = text.clone()
    text2[0, 4:] = 1e3 * torch.randn(3, 16)          # change only padded positions
    text2[2, 2:] = -7.0
    torch.testing.assert_close(model(text2, image, mask), out)


def test_image_mask_excludes_image_tokens():
    model = _encoder().eval()
    text, image, mask = _inputs()
    image_mask = torch.ones(3, 10)
    image_mask[:, 6:] = 0
    out = model(text, image, mask, image_mask)
    image2 = image.clone()
    image2[:, 6:] = 99.0
    torch.testing.assert_close(model(text, image2, mask, image_mask), out)
    torch.testing.assert_close(model(text, image[:, :6], mask), out)


def test_eval_output_independent_of_batch_composition_and_seeded():
    model = _encoder().eval()
    text, image, mask = _inputs()
    full = model(text, image, mask)
    for b in range(3):
        torch.testing.assert_close(model(text[b:b + 1], image[b:b + 1], mask[b:b + 1]),
                                   full[b:b + 1])
    torch.testing.assert_close(_encoder().eval()(text, image, mask), full)


def test_every_parameter_gets_a_gradient():
    model = _encoder()
    text, image, mask = _inputs()
    model(text, image, mask).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_match_depends_on_the_image():
    model = _encoder().eval()
    text, image, mask = _inputs()
    assert not torch.allclose(model(text, image, mask), model(text, image.flip(0), mask))


@pytest.mark.parametrize("change, name", [
    (lambda t, i, m: (t[:, :, :5], i, m), "text_tokens"),
    (lambda t, i, m: (t, i[:2], m), "text_tokens and image_tokens"),
    (lambda t, i, m: (t, i.long(), m), "image_tokens"),
    (lambda t, i, m: (t, i[0], m), "image_tokens"),
    (lambda t, i, m: (t, i, m[:, :5]), "text_mask"),
    (lambda t, i, m: (t, i, m * 2), "text_mask"),
    (lambda t, i, m: (t, i, torch.zeros_like(m)), "text_mask"),
])
def test_errors_name_the_argument(change, name):
    model = _encoder()
    with pytest.raises((TypeError, ValueError), match=name):
        model(*change(*_inputs()))


@pytest.mark.parametrize("kwargs, name", [
    ({"width": 30, "heads": 4}, "width"), ({"layers": 0}, "layers"),
    ({"image_dim": 0}, "image_dim"), ({"mlp_ratio": 0.0}, "mlp_ratio"),
])
def test_config_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FusionConfig(**kwargs)


def test_encoder_rejects_a_non_config():
    with pytest.raises(TypeError, match="config"):
        FusionEncoder({"width": 64})
    with pytest.raises(ValueError, match="features"):
        _encoder().forward_head(torch.zeros(2, 32))


# ----------------------------------------------------------------------------- ITMModel
def _vocab():
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.world import WorldConfig

    return shapeworld_vocab(WorldConfig(canvas=48, max_objects=2))


@pytest.fixture(scope="module")
def itm():
    torch.manual_seed(0)
    return ITMModel(ITMConfig.tiny(_vocab())).eval()


def test_itm_model_frozen_towers_and_trainable_fusion(itm):
    assert not any(p.requires_grad for p in itm.clip.parameters())
    assert all(p.requires_grad for p in itm.fusion.parameters())
    itm.train()
    assert itm.fusion.training and not itm.clip.training
    itm.eval()


def test_itm_model_towers_match_clip_embeddings(itm):
    images = torch.rand(2, 3, 48, 48)
    tokens = itm.tokenize(["a red circle", "two objects: a blue square and a red star"])
    with torch.no_grad():
        t = itm.towers(images, tokens)
        torch.testing.assert_close(t["image_emb"], itm.encode_image(images))
        torch.testing.assert_close(t["text_emb"], itm.encode_text(tokens))
    longest = int(tokens["attention_mask"].sum(1).max())          # trailing padding is cut
    assert t["image_tokens"].shape == (2, 37, 64) and t["text_tokens"].shape == (2, longest, 64)
    full = itm.clip.text.forward_features(itm.clip.text.embed(tokens["input_ids"]))
    torch.testing.assert_close(t["text_tokens"], full[:, :longest])


def test_itm_model_match_probability(itm):
    images = torch.rand(3, 3, 48, 48)
    p = itm.match_probability(images, ["a red circle", "a blue square", "there is one object"])
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()
    with pytest.raises(ValueError, match="texts"):
        itm.match_probability(images, ["a red circle"])
    with pytest.raises(TypeError, match="images"):
        itm(torch.zeros(3, 3, 48, 48, dtype=torch.long), itm.tokenize(["a"] * 3))
    with pytest.raises(TypeError, match="tokens"):
        itm(images, ["a red circle"] * 3)


def test_itm_config_round_trip_and_checks():
    cfg = ITMConfig.tiny(_vocab())
    assert ITMConfig.from_dict(cfg.to_dict()) == cfg
    bad = ITMConfig.tiny(_vocab())
    bad.fusion = FusionConfig(image_dim=32)
    with pytest.raises(ValueError, match="image_dim"):
        ITMModel(bad)
    with pytest.raises(TypeError, match="config"):
        ITMModel(cfg.fusion)
    bad.fusion = FusionConfig(text_dim=32)
    with pytest.raises(ValueError, match="text_dim"):
        ITMModel(bad)


def test_itm_model_on_a_resnet_tower_reads_the_map_as_tokens():
    from vlm_course.models.clip import CLIPConfig

    torch.manual_seed(0)
    cfg = ITMConfig.for_clip(CLIPConfig.tiny_resnet(_vocab()), freeze_towers=False)
    model = ITMModel(cfg).eval()
    images = torch.rand(2, 3, 64, 64)
    tokens = model.tokenize(["a red circle", "a blue square"])
    with torch.no_grad():
        t = model.towers(images, tokens)
        feats = model.clip.visual.forward_features(images)                     # (B, C, H', W')
        assert t["image_tokens"].shape == (2, feats.shape[2] * feats.shape[3], feats.shape[1])
        torch.testing.assert_close(t["image_emb"], model.encode_image(images))
        assert model(images, tokens).shape == (2, 2)
    model.train()
    assert model.clip.training, "towers that are not frozen train with the fusion encoder"


def test_itm_model_scores_indexed_pairs(itm):
    images = torch.rand(2, 3, 48, 48)
    caps = ["a red circle", "a blue square", "there is one object"]
    tokens = itm.tokenize(caps)
    with torch.no_grad():
        out = itm(images, tokens, torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 2, 2]))
        ref = itm(images[[0, 1, 1, 0]], itm.tokenize([caps[i] for i in (0, 1, 2, 2)]))
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="text_index"):
        itm(images, tokens, torch.tensor([0]), torch.tensor([3]))
    with pytest.raises(ValueError, match="image_index and text_index"):
        itm(images, tokens, torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="tokens"):
        itm(images, tokens)
