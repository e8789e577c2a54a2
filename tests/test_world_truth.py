"""The caption-truth function (vlm_course.world.truth): true captions pass, each kind of false
claim is caught, and the truth matrix agrees with the captions each scene was given."""

import pytest
import torch

from vlm_course.world import (
    ShapeWorld,
    WorldConfig,
    caption_is_true,
    caption_problems,
    truth_matrix,
)


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig())


@pytest.fixture(scope="module")
def two(world):
    # a red circle top left, a large blue square in the centre, on a textured background
    return world.compose([
        {"shape": "circle", "colour": "red", "size": "small", "position": "top left"},
        {"shape": "square", "colour": "blue", "size": "large", "position": "centre"},
    ], textured=True)


@pytest.mark.parametrize("caption", [
    "a small red circle", "a photo of a large blue square", "a red circle in the top left",
    "the large square in the centre is blue", "there are two objects",
    "two objects: a red circle and a blue square", "a small red circle above a blue square",
    "a large blue square right of a red circle", "a red circle on a textured background",
])
def test_true_captions(world, two, caption):
    assert caption_problems(caption, two.objects[0], world.cfg, textured=True) == []
    assert caption_is_true(caption, two.objects[0], world.cfg)


@pytest.mark.parametrize(("caption", "reason"), [
    ("a green circle", "no object matches"),
    ("a large red circle", "no object matches"),
    ("a red circle in the centre", "in the centre"),
    ("there are three objects", "count three"),
    ("a small red circle below a blue square", "relation 'below'"),
    ("a blue square left of a red circle", "relation 'left of'"),
    ("a red circle on a black background", "black background"),
    ("a photo of a dog", "neither an object nor a count"),
])
def test_false_captions_say_why(world, two, caption, reason):
    problems = caption_problems(caption, two.objects[0], world.cfg, textured=True)
    assert any(reason in p for p in problems), problems
    assert not caption_is_true(caption, two.objects[0], world.cfg, textured=True)


def test_background_is_checked_only_when_known(world, two):
    cap = "a red circle on a black background"
    assert caption_is_true(cap, two.objects[0], world.cfg)  # textured unknown
    assert not caption_is_true(cap, two.objects[0], world.cfg, textured=True)


def test_truth_matrix_contains_each_scenes_own_captions(world):
    batch = ShapeWorld(WorldConfig(background="mixed")).batch("test", range(40))
    captions = [c for caps in batch.captions for c in caps]
    owner = torch.tensor([b for b, caps in enumerate(batch.captions) for _ in caps])
    truth = truth_matrix(captions, batch, world.cfg)
    assert truth.shape == (len(captions), 40) and truth.dtype == torch.bool
    assert truth[torch.arange(len(captions)), owner].all()  # every caption is true of its scene
    assert 0.0 < truth.float().mean() < 0.5  # and false of most other scenes


def test_bad_input(world, two):
    objs = two.objects[0]
    with pytest.raises(TypeError, match="caption: expected a str"):
        caption_problems(3, objs, world.cfg)
    with pytest.raises(TypeError, match="cfg: expected a WorldConfig"):
        caption_problems("a red circle", objs, {"canvas": 64})
    with pytest.raises(ValueError, match="objects: expected a non-empty list"):
        caption_problems("a red circle", [], world.cfg)
    with pytest.raises(ValueError, match=r"objects\[0\]: expected a dict .* missing \['row'"):
        caption_problems("a red circle", [{"shape": "circle", "colour": "red", "size": "small",
                                           "position": "centre"}], world.cfg)
    with pytest.raises(TypeError, match="captions: expected a list of str"):
        truth_matrix("a red circle", two, world.cfg)
