"""vlm_course.interop: the converters are exact inverses, keep the package free of reference
libraries at import, and encode the Hugging Face pooling pitfall.  Equality of the converted
models with open_clip / Hugging Face (logits and gradients) is in ``tests/models_oracles.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from models_oracles import CAPTIONS, tiny_clip_config

from vlm_course.interop import hf, openclip
from vlm_course.models.clip import CLIP


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("tower", ["vit", "resnet"])
def test_open_clip_round_trip_is_exact(tower):
    torch.manual_seed(0)
    model = CLIP(tiny_clip_config(tower))
    state = model.state_dict()
    there = openclip.to_open_clip(state, model.config)
    assert not any(k.startswith("text.") for k in there)
    _same(openclip.from_open_clip(there), state)


def test_hf_round_trip_is_exact_and_moves_eos():
    torch.manual_seed(0)
    model = CLIP(tiny_clip_config("vit"))
    state, cfg = model.state_dict(), model.config
    there = hf.to_hf(state, cfg)
    _same(hf.from_hf(there, cfg), state)
    V, eos = cfg.text.vocab_size, cfg.text.eos_id
    assert eos == 2  # the course's [EOS]: exactly the id HF treats with its legacy rule
    emb = there["text_model.embeddings.token_embedding.weight"]
    torch.testing.assert_close(emb[V - 1], state["text.token_embedding.weight"][eos])
    torch.testing.assert_close(emb[2], state["text.token_embedding.weight"][V - 1])
    q, k, v = there["vision_model.encoder.layers.0.self_attn.q_proj.weight"], \
        there["vision_model.encoder.layers.0.self_attn.k_proj.weight"], \
        there["vision_model.encoder.layers.0.self_attn.v_proj.weight"]
    torch.testing.assert_close(torch.cat([q, k, v]),
                               state["visual.transformer.resblocks.0.attn.in_proj_weight"])


def test_token_id_map_is_an_involution():
    m = hf.token_id_map(10, 2)
    assert m.tolist() == [0, 1, 9, 3, 4, 5, 6, 7, 8, 2]
    assert m[m].tolist() == list(range(10))
    assert hf.token_id_map(10, 5).tolist() == list(range(10))  # only id 2 needs moving
    ids = torch.tensor([[1, 7, 2, 0]])
    assert hf.hf_input_ids(ids, 10, 2).tolist() == [[1, 7, 9, 0]]


def test_patch_weight_conversions_are_inverse():
    w = torch.randn(16, 3, 8, 8)
    lin = openclip.conv_patch_to_linear(w)
    assert lin.shape == (16, 192)
    torch.testing.assert_close(openclip.linear_patch_to_conv(lin, 8, 3), w, rtol=0, atol=0)


def test_hf_legacy_eos_rule_is_why_the_ids_move():
    """Without the move, HF with eos_token_id=2 pools at the largest id, not at [EOS]."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = CLIP(tiny_clip_config("vit", activation="quick_gelu")).eval()
    cfg = model.config
    hf_cfg = hf.hf_config(cfg)
    assert hf_cfg.text_config.eos_token_id == cfg.text.vocab_size - 1
    tokens = model.tokenize(CAPTIONS)
    right = hf.build_hf(cfg, model.state_dict()).eval()
    hf_cfg.text_config.eos_token_id = 2  # the naive choice: the course's own [EOS] id
    naive = transformers.CLIPModel(hf_cfg).eval()
    naive_state = hf.to_hf(model.state_dict(), cfg)
    emb = "text_model.embeddings.token_embedding.weight"
    naive_state[emb] = model.state_dict()["text.token_embedding.weight"]  # ids not moved
    naive.load_state_dict(naive_state, strict=False)
    with torch.no_grad():
        ours = model.encode_text(tokens, normalize=False)
        ids = hf.hf_input_ids(tokens["input_ids"], cfg.text.vocab_size, cfg.text.eos_id)
        good = right.get_text_features(input_ids=ids, attention_mask=tokens["attention_mask"])
        bad = naive.get_text_features(input_ids=tokens["input_ids"],
                                      attention_mask=tokens["attention_mask"])
    good = getattr(good, "pooler_output", good)
    bad = getattr(bad, "pooler_output", bad)
    torch.testing.assert_close(good, ours, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(bad, ours, atol=1e-2)


def test_unsupported_configs_are_clear_errors():
    pytest.importorskip("open_clip")
    from vlm_course.models import ResNetConfig

    cfg = tiny_clip_config("resnet")
    with pytest.raises(ValueError, match=r"config.image_tower must be 'vit' .* got 'resnet'"):
        hf.to_hf({}, cfg)
    cfg.vision = ResNetConfig.tiny(output_dim=cfg.embed_dim)  # 3 stages: not a ModifiedResNet
    with pytest.raises(ValueError, match="config.vision must be a ModifiedResNet for open_clip"):
        openclip.open_clip_config(cfg)
    with pytest.raises(ValueError, match="state has a key that no course tower holds: 'bogus'"):
        openclip.from_open_clip({"bogus": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"weight must have shape \(D, P\*P\*C=192\)"):
        openclip.linear_patch_to_conv(torch.zeros(4, 100), 8, 3)
    with pytest.raises(ValueError, match=r"eos_id must lie in \[0, vocab_size=10\)"):
        hf.token_id_map(10, 12)


def test_package_import_does_not_load_interop_or_reference_libraries():
    code = ("import sys, vlm_course, vlm_course.models; "
            "bad = [m for m in ('vlm_course.interop', 'open_clip', 'transformers') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    code = ("import sys, vlm_course.interop; "
            "bad = [m for m in ('open_clip', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
