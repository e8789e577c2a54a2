"""The multimodal transformer of chapter 05: attention patterns, teacher forcing, decoding."""

from __future__ import annotations

import pytest
import torch

from vlm_course.models.multimodal import (
    MultimodalConfig,
    MultimodalTransformer,
    attention_pattern,
)

V, L, N = 20, 8, 9


def _model() -> MultimodalTransformer:
    torch.manual_seed(0)
    return MultimodalTransformer(MultimodalConfig(vocab_size=V, context_length=L, image_size=12,
                                                  patch_size=4, width=32, layers=2, heads=4))


def _inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(b, 3, 12, 12, generator=g)
    ids = torch.randint(5, V, (b, L), generator=g)
    ids[:, 0] = 1
    mask = torch.ones(b, L, dtype=torch.long)
    ids[0, 5], ids[0, 6:], mask[0, 6:] = 2, 0, 0  # row 0: 6 real tokens then padding
    ids[1:, L - 1] = 2
    return images, ids, mask


def test_attention_patterns():
    mask = torch.tensor([[1, 1, 1, 0]])
    full = attention_pattern(2, mask, "full")[0, 0]
    assert full.shape == (6, 6)
    assert full[:, :5].all() and not full[:, 5].any()  # padding is never a key
    prefix = attention_pattern(2, mask, "prefix")[0, 0]
    assert prefix[:2, :2].all() and not prefix[:2, 2:].any()  # the image does not read words
    assert prefix[2:, :2].all()  # every word sees the whole image
    words = prefix[2:5, 2:5]
    assert torch.equal(words, torch.ones(3, 3, dtype=torch.bool).tril())
    with pytest.raises(ValueError, match="mode must be one of"):
        attention_pattern(2, mask, "causal")
    with pytest.raises(ValueError, match="input_mask must have shape"):
        attention_pattern(2, mask[0], "full")


def test_shapes_gradients_and_determinism():
    model = _model()
    images, ids, mask = _inputs()
    image_mask = torch.rand(3, N, generator=torch.Generator().manual_seed(1)) < 0.5
    out = model(images, ids, mask, image_mask=image_mask)
    assert out.image.shape == (3, N, 32) and out.text.shape == (3, L, 32)
    cap = model(images, ids, mask, mode="prefix")
    loss = (model.predict_pixels(out.image).square().mean()
            + model.predict_masked_words(out.text).logsumexp(-1).mean()
            + model.predict_next_words(cap.text).logsumexp(-1).mean())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    model.eval()
    a = model(images, ids, mask, image_mask=image_mask).text
    torch.testing.assert_close(a, model(images, ids, mask, image_mask=image_mask).text,
                               rtol=0, atol=0)
    part = model(images[1:], ids[1:], mask[1:], image_mask=image_mask[1:]).text
    torch.testing.assert_close(part, a[1:], rtol=1e-5, atol=1e-6)


def test_prefix_mode_never_looks_ahead_and_full_mode_does():
    model = _model().eval()
    images, ids, mask = _inputs()
    changed = ids.clone()
    changed[:, 5] = (changed[:, 5] + 3) % V  # change word 5
    a = model(images, ids, mode="prefix")
    b = model(images, changed, mode="prefix")
    torch.testing.assert_close(a.text[:, :5], b.text[:, :5], rtol=0, atol=0)
    torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)  # image prefix ignores text
    assert not torch.allclose(a.text[:, 5:], b.text[:, 5:])
    full_a, full_b = model(images, ids), model(images, changed)
    assert not torch.allclose(full_a.text[:, :5], full_b.text[:, :5])  # full sees every word
    assert not torch.allclose(full_a.image, full_b.image)


def test_padding_changes_nothing_for_real_tokens():
    model = _model().eval()
    images, ids, mask = _inputs()
    other = ids.clone()
    other[0, 6:] = 7  # different ids in row 0's padding
    for mode in ("full", "prefix"):
        a = model(images, ids, mask, mode=mode)
        b = model(images, other, mask, mode=mode)
        torch.testing.assert_close(a.text[0, :6], b.text[0, :6], rtol=0, atol=0)
        torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)


def test_image_mask_hides_the_patch_content():
    model = _model().eval()
    images, ids, mask = _inputs()
    hide = torch.zeros(3, N, dtype=torch.bool)
    hide[:, :4] = True
    a = model(images, ids, mask, image_mask=hide)
    changed = images.clone()
    changed[:, :, :4, :] = torch.rand(3, 3, 4, 12)  # patches 0..2 (the first patch row) change
    b = model(changed, ids, mask, image_mask=hide)
    torch.testing.assert_close(a.text, b.text, rtol=0, atol=0)
    c = model(changed, ids, mask)
    assert not torch.allclose(c.text, model(images, ids, mask).text)


def test_greedy_generation_agrees_with_teacher_forcing():
    model = _model().eval()
    images, _, _ = _inputs()
    ids = model.generate(images, max_length=6)
    assert ids.shape[0] == 3 and ids.shape[1] <= 6 and torch.all(ids[:, 0] == 1)
    logits = model.predict_next_words(model(images, ids, mode="prefix").text)
    greedy = logits[:, :-1].argmax(-1)  # the arg-max after each prefix ...
    for row in range(3):
        eos = (ids[row] == 2).nonzero()
        stop = int(eos[0]) if len(eos) else ids.shape[1] - 1
        assert torch.equal(greedy[row, :stop], ids[row, 1:stop + 1])  # ... is the next token
        assert torch.all(ids[row, stop + 1:] == 0)  # padded after [EOS]
    with pytest.raises(ValueError, match="max_length must lie in"):
        model.generate(images, max_length=L + 1)


def test_errors_name_the_argument():
    model = _model()
    images, ids, mask = _inputs()
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 12, 12\)"):
        model(torch.rand(3, 3, 16, 16), ids)
    with pytest.raises(ValueError, match="input_ids must have shape"):
        model(images, torch.ones(3, L + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model(images, torch.full((3, L), V))
    with pytest.raises(TypeError, match="input_ids must be an integer"):
        model(images, ids.float())
    with pytest.raises(ValueError, match="image_mask must have shape"):
        model(images, ids, image_mask=torch.zeros(3, N + 1))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        model(images, ids, mask[:, :4])
    with pytest.raises(ValueError, match="same batch size"):
        model(images[:2], ids)
    with pytest.raises(ValueError, match="mode must be one of"):
        model(images, ids, mode="causal")
    with pytest.raises(ValueError, match="image_size must be divisible"):
        MultimodalConfig(image_size=50, patch_size=8)
    with pytest.raises(ValueError, match="eos_id must lie in"):
        MultimodalConfig(vocab_size=2)
    with pytest.raises(TypeError, match="config must be a MultimodalConfig"):
        MultimodalTransformer({"vocab_size": 3})
    assert MultimodalConfig.from_dict(model.config.to_dict()) == model.config


def test_vocabulary_fills_the_ids_and_tokenizes():
    cfg = MultimodalConfig.tiny(("a", "red", "circle"))
    assert cfg.vocab == ("a", "red", "circle") and cfg.vocab_size == 8
    assert (cfg.pad_id, cfg.sos_id, cfg.eos_id) == (0, 1, 2)
    model = MultimodalTransformer(cfg)
    tokens = model.tokenize(["a red circle"])
    assert tokens["input_ids"].shape == (1, cfg.context_length)
    assert tokens["input_ids"][0, :5].tolist() == [1, 5, 6, 7, 2]
    assert MultimodalConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="config.vocab is empty"):
        _model().tokenize(["a red circle"])
    with pytest.raises(ValueError, match="vocab_size must equal the tokenizer's size 8"):
        MultimodalTransformer(MultimodalConfig(vocab=("a", "red", "circle"), vocab_size=20))
    with pytest.raises(ValueError, match="words"):
        MultimodalConfig.tiny(("Red",))
