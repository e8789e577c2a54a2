"""Winoground in miniature (chapter 06): the items are what they claim, the scores are
Winoground's, perfect / constant / bag-of-words scorers get what they should."""

import pytest
import torch

from vlm_course.evaluation.winoground import (
    CHANCE,
    KINDS,
    clip_scorer,
    evaluate_winoground,
    make_pairs,
    same_words,
    score_pairs,
    winoground_scores,
)
from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.grounding import caption_truth, parse_caption

WORLD = ShapeWorld(WorldConfig(canvas=48))


@pytest.mark.parametrize("kind", KINDS)
def test_items_use_the_same_words_and_each_caption_is_true_of_its_image_only(kind):
    items = make_pairs(WORLD, kind, 40, seed=3)
    assert len(items) == 40 and items.images.shape == (40, 2, 3, 48, 48)
    held = set(WORLD.cfg.heldout)
    for (cap0, cap1), (objs0, objs1) in zip(items.captions, items.objects, strict=True):
        assert same_words(cap0) == same_words(cap1) and cap0 != cap1
        assert not any((o["colour"], o["shape"]) in held for o in objs0 + objs1)
        scenes = [WORLD.compose(o).objects[0] for o in (objs0, objs1)]
        if kind == "count":      # "one red object and two blue objects": count the colours
            for c, objs in enumerate(scenes):
                for cap, other in ((cap0, 0), (cap1, 1)):
                    words = cap.split()
                    n_a, a, n_b, b = words[0], words[1], words[4], words[5]
                    true = all(sum(o["colour"] == col for o in objs) == ["one", "two"].index(n) + 1
                               for n, col in ((n_a, a), (n_b, b)))
                    assert true == (c == other), (cap, objs)
        else:
            truth = caption_truth([cap0, cap1], scenes, WORLD.cfg)
            assert truth.tolist() == [[True, False], [False, True]], (cap0, cap1)
        # the two images differ, and hold the same multiset of shapes
        assert sorted(o["shape"] for o in objs0) == sorted(o["shape"] for o in objs1)


def test_items_render_the_objects_and_are_deterministic():
    a, b = make_pairs(WORLD, "relation", 5, seed=1), make_pairs(WORLD, "relation", 5, seed=1)
    assert a.captions == b.captions and torch.equal(a.images, b.images)
    assert make_pairs(WORLD, "relation", 5, seed=2).captions != a.captions
    assert not torch.equal(a.images[:, 0], a.images[:, 1])
    rel = parse_caption(a.captions[0][0], WORLD.cfg).relation
    assert rel is not None and rel[1] in ("left of", "right of", "above", "below")


def test_winoground_scores_definitions():
    # [p, c, i]: item 0 perfect; item 1 text right only; item 2 image right only; item 3 wrong
    s = torch.tensor([
        [[0.9, 0.1], [0.2, 0.8]],
        [[0.9, 0.95], [0.2, 0.99]],     # each image prefers its caption, caption 0 prefers i1
        [[0.9, 0.1], [0.95, 0.96]],     # each caption prefers its image; image 0 prefers c1
        [[0.1, 0.9], [0.8, 0.2]],
    ])
    out = winoground_scores(s)
    assert out == {"text": 0.5, "image": 0.5, "group": 0.25, "n": 4}
    assert winoground_scores(torch.ones(3, 2, 2))["group"] == 0.0      # ties count as wrong


def test_random_scorer_is_at_chance():
    g = torch.Generator().manual_seed(0)
    out = winoground_scores(torch.rand(40000, 2, 2, generator=g))
    for key in ("text", "image", "group"):
        assert abs(out[key] - CHANCE[key]) < 0.01, (key, out[key])


def test_perfect_scorer_and_bag_of_words_scorer():
    items = make_pairs(WORLD, "binding", 20)
    truth = {(cap, img.numpy().tobytes()): float(c == i)
             for (caps, imgs) in zip(items.captions, items.images, strict=True)
             for c, cap in enumerate(caps) for i, img in enumerate(imgs)}

    def oracle(images, texts):
        return torch.tensor([truth[(t, im.numpy().tobytes())] for im, t in zip(images, texts,
                                                                                strict=True)])

    assert evaluate_winoground(oracle, WORLD, ["binding"], n=20)["binding"]["group"] == 1.0

    def bag_of_words(images, texts):      # sees only the words, sorted: a perfect BoW model
        return torch.tensor([float(len(" ".join(same_words(t)))) for t in texts])

    out = winoground_scores(score_pairs(bag_of_words, items))
    assert out["text"] == out["image"] == out["group"] == 0.0


def test_clip_scorer_uses_the_vlm_interface():
    class Toy:
        def tokenize(self, texts):
            return torch.tensor([[len(t), 1.0] for t in texts])

        def encode_text(self, tokens):
            return tokens

        def encode_image(self, images):
            return torch.stack([images.mean((1, 2, 3)), torch.ones(len(images))], 1)

    s = clip_scorer(Toy())(torch.rand(2, 3, 4, 4), ["ab", "abcd"])
    assert s.shape == (2,) and ((s > 0) & (s <= 1)).all()
    with pytest.raises(TypeError, match="model"):
        clip_scorer(object())


@pytest.mark.parametrize("call, name", [
    (lambda: make_pairs(WORLD, "colour", 3), "kind"),
    (lambda: make_pairs(WORLD, "binding", 0), "n"),
    (lambda: make_pairs("world", "binding", 3), "world"),
    (lambda: winoground_scores(torch.zeros(3, 2)), "scores"),
    (lambda: winoground_scores(torch.zeros(0, 2, 2)), "scores"),
    (lambda: score_pairs(None, make_pairs(WORLD, "binding", 1)), "scorer"),
    (lambda: score_pairs(lambda i, t: torch.zeros(1), make_pairs(WORLD, "binding", 1)),
     "scorer"),
    (lambda: evaluate_winoground(lambda i, t: torch.zeros(len(t)), WORLD, "binding"), "kinds"),
])
def test_errors_name_the_argument(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()
