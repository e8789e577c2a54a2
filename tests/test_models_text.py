"""The CLIP-style text encoder (chapter 02): causal mask, [EOS] pooling, padding, bad input."""

from __future__ import annotations

import pytest
import torch

from vlm_course.interop.hf import text_from_hf
from vlm_course.models import TextConfig, TextEncoder, causal_mask

EOS, PAD = 2, 0


def batch():
    """Two right-padded rows: [SOS] w w [EOS] [PAD]...; returns ids, attention_mask, eot_index."""
    ids = torch.tensor([[1, 10, 11, 12, EOS, PAD, PAD, PAD],
                        [1, 20, EOS, PAD, PAD, PAD, PAD, PAD]])
    return ids, (ids != PAD).long(), torch.tensor([4, 2])


def model(**overrides):
    torch.manual_seed(0)
    return TextEncoder(TextConfig.tiny(vocab_size=32, **overrides)).eval()


def test_causal_mask_is_minus_inf_strictly_above_the_diagonal():
    m = causal_mask(4)
    assert (m.tril() == 0).all() and torch.isinf(m.triu(1)[m.triu(1) != 0]).all()
    assert (m.triu(1) != 0).sum() == 6


def test_three_ways_to_locate_eos_agree():
    ids, mask, eot = batch()
    enc = model(eos_id=EOS)
    a, b, c = enc(ids, mask), enc(ids, eot_index=eot), enc(ids)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    feats = enc.forward_features(enc.embed(ids))
    torch.testing.assert_close(a, enc.pool(feats, eot))


def test_padding_and_later_tokens_cannot_change_the_embedding_earlier_tokens_can():
    ids, mask, _ = batch()
    enc = model()
    ref = enc(ids, mask)
    noisy = ids.clone()
    noisy[mask == 0] = 7  # anything in the padding
    torch.testing.assert_close(enc(noisy, mask), ref)
    changed = ids.clone()
    changed[0, 1] = 13  # a word before [EOS]
    out = enc(changed, mask)
    assert not torch.allclose(out[0], ref[0])
    torch.testing.assert_close(out[1], ref[1])


def test_attention_maps_are_causal():
    ids, mask, _ = batch()
    enc = model()
    _, maps = enc.forward_features(enc.embed(ids), return_attention=True)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 8, 8)
    assert all((w.triu(1) == 0).all() for w in maps)
    out, same = enc(ids, mask, return_attention=True)
    torch.testing.assert_close(out, enc(ids, mask))
    for a, b in zip(maps, same, strict=True):
        torch.testing.assert_close(a, b)


def test_hugging_face_default_eos_id_pools_the_wrong_token():
    """ORACLES.md pitfall: a tiny HF CLIPTextConfig keeps eos_token_id=49407, absent from a small
    vocabulary, so HF pools position 0 instead of [EOS] unless the real id is set."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=32, hidden_size=64, intermediate_size=256,
                         num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=32,
                         hidden_act="gelu", projection_dim=64)
    assert cfg.eos_token_id not in range(32)
    hf = CLIPTextModelWithProjection(cfg).eval()
    enc = TextEncoder(TextConfig.tiny(vocab_size=32, layers=1)).eval()
    enc.load_state_dict(text_from_hf(hf.state_dict()))
    ids, mask, eot = batch()
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask).text_embeds
        at_eos = enc(ids, eot_index=eot)
        at_first = enc(ids, eot_index=torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(theirs, at_first)
    assert not torch.allclose(theirs, at_eos, atol=1e-3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda e, ids, m: e(ids[0], m[0]),
         r"input_ids must have shape \(B, L\) \(2 dims\), got \(8,\)"),
        (lambda e, ids, m: e(torch.zeros(2, 40, dtype=torch.long)),
         r"L <= context_length=32\), got \(2, 40\)"),
        (lambda e, ids, m: e(ids + 40, m), r"input_ids must lie in \[0, vocab_size=32\)"),
        (lambda e, ids, m: e(ids, m[:, :5]),
         r"attention_mask must have the shape of input_ids \(B, L\) = \(2, 8\), got \(2, 5\)"),
        (lambda e, ids, m: e(ids, m.flip(1)), "attention_mask must be right-padded 0/1 rows"),
        (lambda e, ids, m: e(ids, eot_index=torch.tensor([1, 2, 3])),
         r"eot_index must have shape \(B,\) = \(2,\), got \(3,\)"),
        (lambda e, ids, m: e(ids, eot_index=torch.tensor([1, 8])),
         r"eot_index must lie in \[0, L=8\)"),
        (lambda e, ids, m: e(ids), r"give eot_index or attention_mask \(or set cfg.eos_id\)"),
        (lambda e, ids, m: model(eos_id=EOS)(ids[:, :3]),
         "every row of input_ids must contain eos_id=2"),
        (lambda e, ids, m: e.forward_features(torch.rand(2, 40, 64)),
         r"x must have shape \(B, L <= 32"),
    ],
)
def test_bad_input_names_argument_and_shapes(call, match):
    ids, mask, _ = batch()
    with pytest.raises(ValueError, match=match):
        call(model(), ids, mask)


def test_float_ids_are_a_type_error():
    with pytest.raises(TypeError, match="input_ids must be an integer tensor"):
        model()(torch.rand(2, 8))


def test_config_of_the_wrong_type_is_a_type_error():
    from vlm_course.models import ViTConfig

    with pytest.raises(TypeError, match="cfg must be a TextConfig, got ViTConfig"):
        TextEncoder(ViTConfig.tiny())
