"""Word-level tokenizer: specials, round trip, padding, truncation, unknown words, errors."""

import pytest
import torch

from vlm_course.text import Tokenizer
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_world(WorldConfig())


def test_special_ids_are_where_the_encoding_puts_them(tok):
    ids = tok(["a red circle"], context_length=8)["input_ids"][0].tolist()
    assert [tok.vocab[i] for i in ids] == ["[SOS]", "a", "red", "circle", "[EOS]", "[PAD]", "[PAD]",
                                          "[PAD]"]
    assert ids[0] == tok.sos_id == 1 and ids[4] == tok.eos_id == 2 and ids[5] == tok.pad_id == 0
    assert tok.encode("a zebra")[2] == tok.unk_id == 4 and tok.vocab[3] == "[MASK]"
    assert tok.vocab_size == len(tok) == len(set(tok.vocab))


def test_round_trip_on_world_captions(tok):
    batch = ShapeWorld(WorldConfig(caption_noise=0.2, background="mixed")).batch(
        "train", range(100))
    captions = [c for caps in batch.captions for c in caps]
    assert tok.unknown_words(captions) == []
    for cap in captions:
        ids = tok.encode(cap)
        assert ids[0] == tok.sos_id and ids[-1] == tok.eos_id and tok.unk_id not in ids
        assert tok.decode(ids) == cap
    enc = tok(captions, context_length=32)
    assert tok.batch_decode(enc["input_ids"]) == captions


def test_prompts_are_known(tok):
    world = ShapeWorld(WorldConfig())
    for kind in ("shape", "colour", "composition", "position"):
        assert tok.unknown_words(world.prompts(kind)) == []
    assert tok.unknown_words(["a handwritten digit seven", "a photo of a cat"]) == []


def test_lower_case_and_punctuation(tok):
    assert tok.split("A Red-Circle, (left) of: it!") == [
        "a", "red", "circle", ",", "left", "of", ":", "it", "!"]
    assert tok.decode(tok.encode("A RED circle ,  left.")) == "a red circle, left."


def test_unknown_words_map_to_unk_and_are_listed(tok):
    ids = tok.encode("a zebra and a unicorn")
    assert ids.count(tok.unk_id) == 2
    assert tok.unknown_words(["a zebra", "a unicorn", "a zebra"]) == ["unicorn", "zebra"]
    assert tok.decode(ids) == "a [UNK] and a [UNK]"


def test_padding_mask_and_eot(tok):
    enc = tok(["a red circle", "there are two objects"], context_length=10)
    assert enc.input_ids.shape == (2, 10) and enc.input_ids.dtype == torch.long
    assert enc.attention_mask.dtype == torch.long and enc.eot_index.dtype == torch.long
    assert enc["eot_index"].tolist() == [4, 5]
    assert enc["attention_mask"].sum(1).tolist() == [5, 6]
    rows = torch.arange(2)
    assert (enc["input_ids"][rows, enc["eot_index"]] == tok.eos_id).all()
    assert (enc["input_ids"][enc["attention_mask"] == 0] == tok.pad_id).all()
    assert enc.to("cpu")["input_ids"].equal(enc["input_ids"])
    single = tok("a red circle", context_length=10)
    assert single["input_ids"].shape == (1, 10)
    special = tok.special_tokens_mask(enc["input_ids"])
    assert special.sum(1).tolist() == [7, 6]


def test_truncation_keeps_eos_last_or_raises(tok):
    text = "a small red circle left of a large blue square in the top left"
    enc = tok([text], context_length=6)
    assert enc["input_ids"][0].tolist() == tok.encode(text)[:5] + [tok.eos_id]
    assert enc["eot_index"].tolist() == [5] and enc["attention_mask"].sum() == 6
    assert tok.decode(enc["input_ids"][0]) == "a small red circle"
    with pytest.raises(ValueError, match="context_length=6"):
        tok([text], context_length=6, truncate=False)
    fits = tok([text], context_length=len(tok.encode(text)), truncate=False)
    assert tok.decode(fits["input_ids"][0]) == text


def test_errors(tok):
    with pytest.raises(ValueError, match="context_length: expected an int >= 3, got 2"):
        tok(["a"], context_length=2)
    with pytest.raises(TypeError, match="texts: expected a str or a sequence of str"):
        tok([1, 2])
    with pytest.raises(TypeError, match="text: expected a str, got int"):
        tok.encode(3)
    with pytest.raises(ValueError, match=rf"ids: expected ids in \[0, {tok.vocab_size}\), got 999"):
        tok.decode([999])
    with pytest.raises(ValueError, match=r"ids: expected a 1-D sequence, got shape \(1, 2\)"):
        tok.decode(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="words: expected lower-case words .* got 'Red'"):
        Tokenizer(["Red"])
    with pytest.raises(TypeError, match="word: expected a str, got int"):
        tok.known(3)


def test_which_words_are_known(tok):
    assert tok.known("red") and "red" in tok and "Red" in tok and "," in tok
    assert not tok.known("backdrop") and "backdrop" not in tok
    assert "[UNK]" not in tok and not tok.known("[PAD]")  # special tokens are not words
    assert 3 not in tok
    prompt = "a photograph of a plain backdrop"
    assert tok.unknown_words(prompt) == ["backdrop", "photograph", "plain"]
    assert [w for w in tok.split(prompt) if w not in tok] == ["photograph", "plain", "backdrop"]


def test_strict_mode_raises_listing_every_unknown_word(tok):
    prompt = "a photograph of a plain backdrop"
    lenient = tok([prompt], context_length=12)
    assert (lenient["input_ids"] == tok.unk_id).sum() == 3  # silently [UNK] by default
    with pytest.raises(ValueError, match=r"texts contain 3 word\(s\) not in the vocabulary "
                                         r"\(strict=True.*\['backdrop', 'photograph', 'plain'\]"):
        tok([prompt, "a red circle"], context_length=12, strict=True)
    with pytest.raises(ValueError, match=r"\['zebra'\]"):
        tok.encode("a zebra", strict=True)
    strict = tok(["a red circle"], context_length=12, strict=True)
    assert strict["input_ids"].equal(tok(["a red circle"], context_length=12)["input_ids"])
    assert tok.encode("a red circle", strict=True) == tok.encode("a red circle")


def test_save_load_and_determinism(tok, tmp_path):
    tok.save(tmp_path / "tok.json")
    again = Tokenizer.load(tmp_path / "tok.json")
    assert again.vocab == tok.vocab
    assert Tokenizer.from_world(WorldConfig()).vocab == tok.vocab
    extra = Tokenizer.from_world(WorldConfig(), extra_words=["Zebra"])
    assert extra.unknown_words(["a zebra"]) == [] and extra.vocab_size == tok.vocab_size + 1
