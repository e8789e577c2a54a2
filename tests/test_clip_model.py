"""The two-tower CLIP: interface, shapes, gradients, determinism, config round trip, errors."""

import dataclasses

import pytest
import torch

from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.resnet import ResNetConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.objectives.contrastive import clip_loss
from vlm_course.recipes.clip import PRESETS, shapeworld_vocab
from vlm_course.world import WorldConfig

VOCAB = shapeworld_vocab(WorldConfig())  # the tokenizer words of the default ShapeWorld


def small_config(**kw) -> CLIPConfig:
    return CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                          heads=2),
                            TextConfig(width=16, layers=1, heads=2, context_length=24), VOCAB,
                            **kw)


CAPTIONS = ["a red circle", "a large blue square", "a green star left of a white ring",
            "a small yellow heart"]


def test_interface_shapes_normalisation_and_scale():
    torch.manual_seed(0)
    model = CLIP(small_config())
    images = torch.rand(4, 3, 32, 32)
    tokens = model.tokenize(CAPTIONS)
    assert tokens["input_ids"].shape == (4, 24) and tokens["eot_index"].shape == (4,)
    img, txt = model.encode_image(images), model.encode_text(tokens)
    assert img.shape == (4, 16) and txt.shape == (4, 16)
    assert torch.isfinite(img).all() and torch.isfinite(txt).all()
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(4))
    raw = model.encode_image(images, normalize=False)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=-1), img)
    # a bare input_ids tensor pools at [EOS] too
    torch.testing.assert_close(model.encode_text(tokens["input_ids"]), txt)
    assert float(model.logit_scale.detach()) == pytest.approx(2.6593, abs=1e-4)  # log(1 / 0.07)
    a, b, s = model(images, tokens)
    torch.testing.assert_close(a, img)
    assert s is model.logit_scale


def test_every_parameter_gets_a_gradient_and_determinism():
    torch.manual_seed(0)
    model = CLIP(small_config())
    images = torch.rand(4, 3, 32, 32)
    loss = clip_loss(*model(images, model.tokenize(CAPTIONS)))
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    torch.manual_seed(0)
    again = CLIP(small_config())
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)


def test_resnet_tower_and_presets():
    cfg = CLIPConfig.build(16, ResNetConfig.tiny(image_size=32, width=8, heads=2),
                           TextConfig(width=16, layers=1, heads=2), VOCAB)
    assert cfg.image_tower == "resnet"  # follows the type of the vision config
    model = CLIP(cfg)
    assert model.encode_image(torch.rand(2, 3, 32, 32)).shape == (2, 16)
    assert {"tiny", "small"} <= set(PRESETS)
    tiny = CLIP(CLIPConfig.tiny(VOCAB))
    n = sum(p.numel() for p in tiny.parameters())
    assert 50_000 < n < 2_000_000                 # a few MB of fp32 weights at most


def test_config_round_trip_through_json_dict():
    import json

    for cfg in (small_config(), CLIPConfig.tiny_resnet(VOCAB)):
        back = CLIPConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert back == cfg


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="config must be a CLIPConfig, got dict"):
        CLIP({"embed_dim": 16})
    cfg = small_config()
    with pytest.raises(ValueError, match=r"vision.output_dim \(16\) and text.output_dim \(16\) "
                                         r"must equal embed_dim \(32\)"):
        CLIP(dataclasses.replace(cfg, embed_dim=32))
    with pytest.raises(ValueError, match=rf"config.text.vocab_size must be the tokenizer's "
                                         rf"{cfg.text.vocab_size}, got 7"):
        CLIP(dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, vocab_size=7)))
    with pytest.raises(ValueError, match=r"config.image_tower must be one of \('vit', 'resnet'\), "
                                         "got 'mlp'"):
        CLIP(dataclasses.replace(cfg, image_tower="mlp"))
    with pytest.raises(ValueError,
                       match=r"image_tower must be one of \('vit', 'resnet'\), got 'mlp'"):
        CLIPConfig.from_dict({**cfg.to_dict(), "image_tower": "mlp"})
    with pytest.raises(ValueError, match="vocab must be a non-empty sequence of words"):
        CLIPConfig.tiny(())
    with pytest.raises(ValueError, match="config.vocab is empty"):
        CLIP(dataclasses.replace(cfg, vocab=()))
    with pytest.raises(ValueError, match="d lacks 'vocab'"):
        CLIPConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "vocab"})
    model = CLIP(cfg)
    with pytest.raises(TypeError, match="images must be a float tensor .* got torch.int64"):
        model.encode_image(torch.zeros(2, 3, 32, 32, dtype=torch.long))
    with pytest.raises(TypeError, match="tokens must be the dict returned by tokenize.* got list"):
        model.encode_text(["a red circle"])
    with pytest.raises(TypeError, match="texts must be a list of strings, got list"):
        model.tokenize([1, 2])


def test_tokenize_strict_lists_unknown_words():
    model = CLIP(small_config())
    with pytest.raises(ValueError, match=r"\['backdrop', 'photograph', 'plain'\]"):
        model.tokenize(["a photograph of a plain backdrop"], strict=True)
    lenient = model.tokenize(["a photograph of a plain backdrop"])
    assert (lenient["input_ids"] == model.tokenizer.unk_id).sum() == 3
