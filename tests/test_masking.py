"""Masking helpers of chapter 05: MAE random masking, BEiT block masking, BERT token masking.

Oracles: Hugging Face ``ViTMAEEmbeddings.random_masking`` (same noise -> same kept tokens, mask and
restore indices) and ``DataCollatorForLanguageModeling`` (same generator -> same decisions; rates
within binomial bounds over many draws).  Invariants: ratio 0 masks nothing, restore o shuffle is
the identity, special tokens are never chosen.  Errors name the argument.
"""

from __future__ import annotations

import math

import pytest
import torch

from vlm_course.objectives.masking import (
    bert_masking,
    block_masking,
    keep_count,
    random_masking,
    restore_order,
)
from vlm_course.text import Tokenizer


# ---------------------------------------------------------------------- MAE random masking
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.9])
def test_random_masking_matches_hugging_face_vitmae(ratio):
    transformers = pytest.importorskip("transformers")
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEEmbeddings

    cfg = transformers.ViTMAEConfig(hidden_size=16, image_size=24, patch_size=4, mask_ratio=ratio)
    hf = ViTMAEEmbeddings(cfg)
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(5, 36, 16, generator=g)
    noise = torch.rand(5, 36, generator=g)
    hf_kept, hf_mask, hf_restore = hf.random_masking(tokens, noise=noise)
    kept, mask, ids_restore, ids_keep = random_masking(tokens, ratio, noise=noise)
    torch.testing.assert_close(kept, hf_kept, rtol=0, atol=0)
    torch.testing.assert_close(mask, hf_mask, rtol=0, atol=0)
    torch.testing.assert_close(ids_restore, hf_restore, rtol=0, atol=0)
    assert kept.shape == (5, int(36 * (1 - ratio)), 16)
    # ids_keep are the original positions of the kept tokens, and exactly the mask's zeros
    gathered = torch.gather(tokens, 1, ids_keep[..., None].expand(-1, -1, 16))
    torch.testing.assert_close(kept, gathered)
    assert torch.equal(torch.zeros(5, 36).scatter(1, ids_keep, 1.0), 1 - mask)


def test_ratio_zero_masks_nothing_and_keeps_every_token():
    tokens = torch.randn(3, 9, 4)
    kept, mask, ids_restore, _ = random_masking(tokens, 0.0, generator=torch.Generator())
    assert mask.sum() == 0 and kept.shape == tokens.shape
    torch.testing.assert_close(restore_order(kept, ids_restore), tokens, rtol=0, atol=0)


def test_restore_after_shuffle_is_identity():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(4, 16, 8, generator=g)
    _, _, ids_restore, _ = random_masking(tokens, 0.75, generator=g)
    ids_shuffle = torch.argsort(ids_restore, dim=1)
    shuffled = torch.gather(tokens, 1, ids_shuffle[..., None].expand(-1, -1, 8))
    torch.testing.assert_close(restore_order(shuffled, ids_restore), tokens, rtol=0, atol=0)


def test_restore_puts_mask_tokens_exactly_at_removed_positions():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(2, 12, 3, generator=g) + 5.0
    kept, mask, ids_restore, _ = random_masking(tokens, 0.5, generator=g)
    full = restore_order(kept, ids_restore, mask_token=torch.zeros(3))
    removed = mask.bool()
    assert torch.all(full[removed] == 0)
    torch.testing.assert_close(full[~removed], tokens[~removed], rtol=0, atol=0)


def test_random_masking_is_seeded_and_per_sample():
    tokens = torch.zeros(64, 20, 1)
    a = random_masking(tokens, 0.5, generator=torch.Generator().manual_seed(7)).mask
    b = random_masking(tokens, 0.5, generator=torch.Generator().manual_seed(7)).mask
    assert torch.equal(a, b)
    assert len({tuple(row.tolist()) for row in a}) > 60  # each sample draws its own mask
    assert torch.all(a.sum(1) == 10)


@pytest.mark.parametrize("ratio, match", [(1.0, "mask_ratio"), (-0.1, "mask_ratio"),
                                          (0.99, "mask_ratio=0.99 keeps no token")])
def test_random_masking_rejects_bad_ratios(ratio, match):
    with pytest.raises(ValueError, match=match):
        random_masking(torch.zeros(2, 36, 4), ratio)


def test_random_masking_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, N, D\)"):
        random_masking(torch.zeros(36, 4), 0.5)
    with pytest.raises(ValueError, match=r"noise must have shape \(B, N\) = \(2, 36\)"):
        random_masking(torch.zeros(2, 36, 4), 0.5, noise=torch.zeros(2, 35))
    with pytest.raises(TypeError, match="mask_ratio"):
        random_masking(torch.zeros(2, 36, 4), "0.5")
    assert keep_count(36, 0.75) == 9


def test_restore_order_errors_name_the_argument():
    kept = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="mask_token must have shape"):
        restore_order(kept, torch.arange(6).repeat(2, 1))
    with pytest.raises(ValueError, match="ids_restore must have shape"):
        restore_order(kept, torch.arange(6).repeat(3, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="tokens must have shape"):
        restore_order(torch.zeros(3, 4), torch.arange(6).repeat(2, 1))


# ---------------------------------------------------------------------- BEiT block masking
def _neighbours(mask: torch.Tensor, h: int, w: int) -> float:
    """Mean number of masked 4-neighbours of a masked patch (clustering measure)."""
    m = mask.reshape(-1, h, w).float()
    pad = torch.nn.functional.pad(m, (1, 1, 1, 1))
    around = pad[:, :-2, 1:-1] + pad[:, 2:, 1:-1] + pad[:, 1:-1, :-2] + pad[:, 1:-1, 2:]
    return float((around * m).sum() / m.sum())


def test_block_masking_counts_and_clusters():
    g = torch.Generator().manual_seed(0)
    mask = block_masking(200, (6, 6), 14, generator=g)
    assert mask.shape == (200, 36) and mask.dtype == torch.bool
    counts = mask.sum(1)
    assert counts.max() <= 14 and (counts == 14).float().mean() > 0.9
    random = torch.rand(200, 36, generator=g).argsort(1) < 14  # 14 patches anywhere
    assert _neighbours(mask, 6, 6) > _neighbours(random, 6, 6) + 0.5
    again = block_masking(200, (6, 6), 14, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_masked": 36}, "num_masked"), ({"num_masked": 0}, "num_masked"),
    ({"grid": (6,)}, "grid"), ({"min_block": 20}, "min_block"),
    ({"min_aspect": 0.0}, "min_aspect"), ({"batch_size": 0}, "batch_size")])
def test_block_masking_errors(kwargs, match):
    args = {"batch_size": 2, "grid": (6, 6), "num_masked": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        block_masking(args.pop("batch_size"), args.pop("grid"), args.pop("num_masked"), **args)


# ---------------------------------------------------------------------- BERT token masking
@pytest.fixture(scope="module")
def captions():
    from vlm_course.world import ShapeWorld, WorldConfig

    batch = ShapeWorld(WorldConfig(canvas=48)).batch("train", range(64), masks=False)
    return [c for caps in batch.captions for c in caps]  # 320 captions


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_world()


def _hf_tokenizer(tok: Tokenizer):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    model = tokenizers.models.WordLevel({w: i for i, w in enumerate(tok.vocab)}, unk_token="[UNK]")
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizers.Tokenizer(model), pad_token="[PAD]", bos_token="[SOS]",
        eos_token="[EOS]", mask_token="[MASK]", unk_token="[UNK]")


def test_bert_masking_makes_the_same_decisions_as_hugging_face(captions, tokenizer):
    from transformers import DataCollatorForLanguageModeling

    hf_tok = _hf_tokenizer(tokenizer)
    ids = tokenizer(captions, context_length=24).input_ids
    collator = DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15, seed=11)
    hf = collator([{"input_ids": row.tolist()} for row in ids])
    ours = bert_masking(ids, tokenizer.vocab, generator=torch.Generator().manual_seed(11))
    assert torch.equal(ours.labels, hf["labels"])  # the same tokens chosen
    assert torch.all(hf["input_ids"][ours.replaced] == tokenizer.mask_id)
    kept = (ours.labels != -100) & ~ours.replaced & ~ours.randomized
    unchosen = ours.labels == -100
    assert torch.equal(hf["input_ids"][kept | unchosen], ids[kept | unchosen])
    assert torch.equal(ours.input_ids[kept | unchosen], ids[kept | unchosen])
    assert ours.replaced.sum() > 50 and ours.randomized.sum() > 3 and kept.sum() > 3


def _binomial_ok(hits: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_bert_masking_rates_match_hugging_face_within_binomial_bounds(captions, tokenizer):
    from transformers import DataCollatorForLanguageModeling

    ids = tokenizer(captions, context_length=24).input_ids
    special = tokenizer.special_tokens_mask(ids)
    collator = DataCollatorForLanguageModeling(_hf_tokenizer(tokenizer), seed=123)
    g = torch.Generator().manual_seed(321)  # a different stream: only statistics are compared
    V = tokenizer.vocab_size
    stats = {"ours": [0, 0, 0, 0], "hf": [0, 0, 0, 0]}  # chosen, [MASK], unchanged, eligible
    for _ in range(40):
        ours = bert_masking(ids, tokenizer.vocab, generator=g)
        hf = collator([{"input_ids": row.tolist()} for row in ids])
        for name, out, labels in (("ours", ours.input_ids, ours.labels),
                                  ("hf", hf["input_ids"], hf["labels"])):
            chosen = labels != -100
            assert not (chosen & special).any(), f"{name} chose a special token"
            assert torch.equal(out[special], ids[special]), f"{name} changed a special token"
            s = stats[name]
            s[0] += int(chosen.sum())
            s[1] += int((out[chosen] == tokenizer.mask_id).sum())
            s[2] += int((out[chosen] == ids[chosen]).sum())
            s[3] += int((~special).sum())
    for name, (chosen, masked, unchanged, eligible) in stats.items():
        assert _binomial_ok(chosen, eligible, 0.15), (name, chosen / eligible)
        assert _binomial_ok(masked, chosen, 0.8 + 0.1 / V), (name, masked / chosen)
        assert _binomial_ok(unchanged, chosen, 0.1 + 0.1 / V), (name, unchanged / chosen)


def test_bert_masking_never_picks_special_tokens_or_padding(tokenizer):
    ids = tokenizer(["a red circle", "two objects: a blue star and a green ring"],
                    context_length=16).input_ids
    special = tokenizer.special_tokens_mask(ids)
    out = bert_masking(ids, tokenizer.vocab, probability=1.0,
                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.labels != -100, ~special)  # every word, no special token
    assert torch.equal(out.input_ids[special], ids[special])
    words = out.input_ids[out.randomized]
    assert not torch.isin(words, torch.arange(5)).any()  # random words are never special
    extra = torch.zeros_like(special)
    extra[:, 1] = True
    out = bert_masking(ids, tokenizer.vocab, probability=1.0, special_tokens_mask=extra)
    assert torch.all(out.labels[:, 1] == -100)


def test_bert_masking_fractions_at_the_extremes(tokenizer):
    ids = tokenizer(["a red circle"] * 50, context_length=8).input_ids
    all_mask = bert_masking(ids, tokenizer.vocab, probability=1.0, mask_fraction=1.0,
                            random_fraction=0.0)
    chosen = all_mask.labels != -100
    assert torch.all(all_mask.input_ids[chosen] == tokenizer.mask_id)
    nothing = bert_masking(ids, tokenizer.vocab, probability=0.0)
    assert torch.equal(nothing.input_ids, ids) and torch.all(nothing.labels == -100)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"vocab": ["[PAD]", "[SOS]", "[EOS]", "a", "red", "circle"]}, ValueError, r"\[MASK\]"),
    ({"probability": 1.5}, ValueError, "probability"),
    ({"mask_fraction": 0.8, "random_fraction": 0.3}, ValueError, "mask_fraction \\+ random"),
    ({"input_ids": torch.ones(2, 3)}, TypeError, "input_ids must be an integer"),
    ({"input_ids": torch.ones(3, dtype=torch.long)}, ValueError, r"input_ids must have shape"),
    ({"input_ids": torch.full((2, 3), 999)}, ValueError, r"input_ids must lie in"),
    ({"special_tokens_mask": torch.zeros(1, 1, dtype=torch.bool)}, ValueError,
     "special_tokens_mask"),
])
def test_bert_masking_errors(tokenizer, kwargs, error, match):
    args = {"input_ids": torch.tensor([[1, 7, 8, 2]]), "vocab": tokenizer.vocab, **kwargs}
    with pytest.raises(error, match=match):
        bert_masking(args.pop("input_ids"), args.pop("vocab"), **args)
