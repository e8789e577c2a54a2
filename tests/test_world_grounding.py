"""Caption truth in bulk and phrase grounding (world/grounding.py, chapter 06)."""

import pytest
import torch

from vlm_course.text import Tokenizer
from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.grounding import (
    caption_truth,
    parse_caption,
    parse_holds,
    word_groundings,
)

CFG = WorldConfig(max_objects=3)
WORLD = ShapeWorld(CFG)


def _scene(*objs):
    return WORLD.compose([dict(zip(("colour", "shape", "size", "position"), o, strict=True))
                          for o in objs]).objects[0]


def test_every_caption_is_true_of_its_own_scene():
    batch = WORLD.batch("train", range(200), masks=False)
    caps = [c for cs in batch.captions for c in cs]
    owner = torch.tensor([b for b, cs in enumerate(batch.captions) for _ in cs])
    truth = caption_truth(caps, batch.objects, CFG)
    assert truth.shape == (200, len(caps))
    assert truth[owner, torch.arange(len(caps))].all()
    # and false of most other scenes, true of some (e.g. "there are two objects")
    assert 0.01 < truth.float().mean() < 0.2


@pytest.mark.parametrize("max_objects", [2, 3])
def test_caption_truth_agrees_with_the_reference_checker(max_objects):
    from vlm_course.world.truth import caption_is_true

    cfg = WorldConfig(max_objects=max_objects, seed=7)
    batch = ShapeWorld(cfg).batch("train", range(60), masks=False)
    caps = [c for cs in batch.captions[:40] for c in cs]               # 200 captions x 60 scenes
    fast = caption_truth(caps, batch.objects, cfg)
    slow = torch.tensor([[caption_is_true(c, objs, cfg) for c in caps] for objs in batch.objects])
    differ = (fast != slow).nonzero().tolist()
    # the only allowed difference is the refinement the module docstring names: a colour after
    # "in the <cell> is" belongs to the located object (the reference accepts any such object)
    for b, c in differ:
        assert " is " in caps[c] and " in the " in caps[c] and not fast[b, c], caps[c]
    assert len(differ) <= 0.002 * fast.numel()
    assert fast.sum() > 300


def test_hand_made_truths():
    scene = _scene(("red", "circle", "large", "top left"), ("blue", "square", "small", "centre"))
    cases = {
        "a red circle and a blue square": True,
        "a blue circle and a red square": False,                  # binding swapped
        "a large red circle left of a blue square": True,
        "a large blue square left of a red circle": False,        # relation swapped
        "a red circle above a blue square": True,
        "there are two objects": True, "there are three objects": False,
        "a blue square in the centre": True, "a blue square in the top left": False,
        "the small square in the centre is blue": True,
        "the small square in the centre is red": False,           # colour after "is" counts
        "a small red circle": False, "a photo of a large red circle": True,
    }
    for caption, expected in cases.items():
        assert parse_holds(parse_caption(caption, CFG), scene) == expected, caption


def test_word_groundings_follow_the_phrases():
    scene = _scene(("red", "circle", "large", "top left"), ("blue", "square", "small", "centre"),
                   ("red", "star", "small", "bottom right"))
    caption = "a large red circle left of a blue square"
    words = Tokenizer.split(caption)
    ground = word_groundings(caption, scene, CFG)
    assert len(ground) == len(words)
    assert dict(zip(words, ground, strict=True)) == {
        "a": [], "large": [0], "red": [0], "circle": [0], "left": [], "of": [], "blue": [1],
        "square": [1]}
    # "red" alone would name two objects; inside "a red star" it names only the star
    assert word_groundings("a red star", scene, CFG) == [[], [2], [2]]
    assert word_groundings("the large circle in the top left is red", scene, CFG)[-1] == [0]


def test_errors():
    with pytest.raises(TypeError, match="caption"):
        parse_caption(3, CFG)
    with pytest.raises(TypeError, match="captions"):
        caption_truth("a red circle", [[]], CFG)


def test_grid_regions_and_targets_line_up_with_the_objects():
    from vlm_course.world.grounding import grid_regions, grounding_targets

    batch = WORLD.batch("test", range(30))
    regions = grid_regions(batch.objects, CFG.canvas)
    assert regions.shape == (30, 9, 4)
    side = CFG.canvas / 3
    for b, objs in enumerate(batch.objects):
        cells = {o["cell"] for o in objs}
        for k in range(9):
            x0, y0, x1, y1 = regions[b, k].tolist()
            if k in cells:          # the object's box lies inside its cell
                torch.testing.assert_close(regions[b, k], batch.boxes[b][[o["cell"] for o in
                                                                          objs].index(k)])
            else:
                assert (x0, y0) == pytest.approx(((k % 3) * side, (k // 3) * side))
            assert (k % 3) * side <= x0 < x1 <= (k % 3 + 1) * side + 1e-4
    captions = [c[0] for c in batch.captions]
    targets = grounding_targets(captions, batch.objects, CFG, context_length=24)
    assert targets.shape == (30, 9, 24)
    for b, cap in enumerate(captions):
        words = Tokenizer.split(cap)
        for k, j in targets[b].nonzero().tolist():
            obj = next(o for o in batch.objects[b] if o["cell"] == k)
            assert words[j - 1] in (obj["colour"], obj["shape"], obj["size"]), (cap, k, j)
        assert targets[b].any(), cap       # every first caption names an object
    with pytest.raises(ValueError, match="captions"):
        grounding_targets(captions[:3], batch.objects, CFG, 24)
    with pytest.raises(ValueError, match="objects"):
        grid_regions(WORLD.batch("test", range(2), masks=False).objects, CFG.canvas)


def test_swap_words_keeps_the_words_and_changes_the_truth():
    import random

    from vlm_course.evaluation.winoground import same_words
    from vlm_course.world.perturb import swap_words

    rng = random.Random(0)
    cap = "a large red circle left of an orange square"
    seen = {swap_words(cap, CFG, rng) for _ in range(60)}
    assert seen == {"a large orange circle left of a red square",
                    "a large red square left of an orange circle",
                    "a large orange square left of a red circle"}
    assert swap_words("a large red circle", CFG, rng) is None
    assert swap_words("a red circle and a red square", CFG, rng, ("colour",)) is None
    batch = WORLD.batch("train", range(100), masks=False)
    changed = 0
    for caps, objs in zip(batch.captions, batch.objects, strict=True):
        for cap in caps:
            swapped = swap_words(cap, CFG, rng)
            if swapped is None:
                continue
            assert same_words(swapped) == same_words(cap) and swapped != cap
            changed += not parse_holds(parse_caption(swapped, CFG), objs)
    assert changed > 50, "most swaps are false of the scene"
    with pytest.raises(ValueError, match="kinds"):
        swap_words(cap, CFG, rng, ("size",))
    with pytest.raises(TypeError, match="caption"):
        swap_words(None, CFG, rng)
