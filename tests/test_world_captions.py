"""Captions: at least five, true of the scene (except recorded noise), noise at the requested
rate."""

import re

import pytest

from vlm_course.world import (
    ShapeWorld,
    WorldConfig,
    caption_problems,
    caption_vocabulary,
    parse_mentions,
)
from vlm_course.world.captions import COUNT_WORDS, RELATIONS


def check_caption(caption: str, objects: list[dict], cfg) -> list[str]:
    """The package's caption checker (vlm_course.world.truth), as the tests call it."""
    return caption_problems(caption, objects, cfg)


@pytest.mark.parametrize("split", ["train", "test"])
def test_clean_captions_are_true(split):
    world = ShapeWorld(WorldConfig(background="mixed"))
    batch = world.batch(split, range(300))
    kinds = {"relation": 0, "count": 0, "position": 0}
    for caps, objs, noise in zip(batch.captions, batch.objects, batch.caption_noise, strict=True):
        assert noise == []
        assert len(caps) >= 5
        for cap in caps:
            assert check_caption(cap, objs, world.cfg) == [], cap
            kinds["relation"] += any(f" {r} " in cap for r in RELATIONS)
            kinds["count"] += any(w in cap.split() for w in COUNT_WORDS)
            kinds["position"] += " in the " in cap
        if len(objs) >= 2:
            assert any(any(f" {r} " in c for r in RELATIONS) for c in caps)
    assert min(kinds.values()) > 100


def test_noise_is_recorded_and_is_the_only_falsehood():
    cfg = WorldConfig(caption_noise=0.4)
    world = ShapeWorld(cfg)
    clean = ShapeWorld(cfg.replace(caption_noise=0.0)).batch("train", range(200))
    noisy = world.batch("train", range(200))
    n_noisy, n_total, n_false = 0, 0, 0
    for b, (caps, objs, noise) in enumerate(
        zip(noisy.captions, noisy.objects, noisy.caption_noise, strict=True)
    ):
        assert objs == clean.objects[b]
        marked = {r["caption"] for r in noise}
        for i, cap in enumerate(caps):
            n_total += 1
            problems = check_caption(cap, objs, cfg)
            if i in marked:
                n_noisy += 1
                rec = next(r for r in noise if r["caption"] == i)
                assert rec["noisy"] != rec["true"] and rec["noisy"] in re.findall(r"[a-z]+", cap)
                assert rec["true"] == objs[rec["object"]][rec["kind"]]
                n_false += bool(problems)
            else:
                assert problems == [], cap
    rate = n_noisy / n_total
    print(f"measured noise rate {rate:.3f}")
    assert 0.33 < rate < 0.47
    # a replaced word can by chance still describe another object, but rarely
    assert n_false > 0.8 * n_noisy


def test_vocabulary_covers_all_captions():
    cfg = WorldConfig(caption_noise=0.5, background="mixed")
    vocab = set(caption_vocabulary(cfg))
    for split in ("train", "heldout"):
        batch = ShapeWorld(cfg).batch(split, range(200))
        for caps in batch.captions:
            for cap in caps:
                tokens = re.findall(r"[a-z]+|[,:]", cap)
                assert set(tokens) <= vocab, set(tokens) - vocab


def test_parse_mentions():
    cfg = WorldConfig()
    assert parse_mentions("a small red circle left of a blue square", cfg) == [
        {"size": "small", "colour": "red", "shape": "circle"},
        {"colour": "blue", "shape": "square"}]
    assert parse_mentions("the large star in the centre is cyan", cfg) == [
        {"size": "large", "shape": "star", "colour": "cyan"}]
    assert parse_mentions("there are two objects", cfg) == []


def test_articles_agree():
    cfg = WorldConfig(colours=("orange", "red"), shapes=("circle", "square"), heldout=())
    batch = ShapeWorld(cfg).batch("train", range(50))
    text = " ".join(c for caps in batch.captions for c in caps)
    assert " a orange" not in text and "an orange" in text


def test_eight_distinct_captions_even_for_one_object():
    cfg = WorldConfig(n_captions=8, max_objects=1)
    batch = ShapeWorld(cfg).batch("val", range(100))
    for caps in batch.captions:
        assert len(caps) == 8 == len(set(caps))


def test_fix_articles_is_the_one_article_rule():
    from vlm_course.datasets.image_set import ImageClassificationSet
    from vlm_course.world.captions import fix_articles

    assert fix_articles("a photo of a orange") == "a photo of an orange"
    assert fix_articles("a red circle, a ellipse and a umbrella") == \
        "a red circle, an ellipse and an umbrella"
    assert fix_articles("a banana in a room") == "a banana in a room"   # "a" only before a vowel
    assert fix_articles("data a") == "data a"
    with pytest.raises(TypeError, match="text must be a str, got int"):
        fix_articles(3)
    world = ShapeWorld(WorldConfig.tiny())
    for prompt, name in zip(world.prompts("colour"), world.class_names("colour"), strict=True):
        assert prompt == fix_articles(f"a photo of a {name}")
    import torch

    toy = ImageClassificationSet(torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long),
                                 ("orange",), ["x"], "toy")
    assert toy.prompts("a photo of a {}") == ["a photo of an orange"]
