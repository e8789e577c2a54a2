"""evaluation.pairs: the paired similarity matrix equals explicit cosines; margin and top-1 follow
their definitions; bad inputs name the argument."""

import pytest
import torch

from vlm_course.evaluation.pairs import diagonal_margin, diagonal_top1, pair_similarity
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.recipes.clip import shapeworld_vocab
from vlm_course.world import ShapeWorld, WorldConfig


@pytest.fixture(scope="module")
def model_and_pairs():
    torch.manual_seed(3)
    world_cfg = WorldConfig(canvas=48, max_objects=1)
    model = CLIP(CLIPConfig.tiny(shapeworld_vocab(world_cfg)))
    images, captions = ShapeWorld(world_cfg).pairs("val", [4, 17, 23, 40, 51])
    return model, images, captions


def test_pair_similarity_is_cosine_of_each_pair(model_and_pairs):
    model, images, captions = model_and_pairs
    model.train()
    sim = pair_similarity(model, images, captions)
    assert model.training, "the caller's mode is restored"
    model.eval()
    with torch.no_grad():
        for i in range(len(images)):
            img = model.encode_image(images[i:i + 1], normalize=False)[0]
            for j, caption in enumerate(captions):
                txt = model.encode_text(model.tokenize([caption]), normalize=False)[0]
                expected = torch.dot(img, txt) / (img.norm() * txt.norm())
                torch.testing.assert_close(sim[i, j], expected, atol=1e-5, rtol=1e-5)


def test_margin_and_top1_follow_their_definitions():
    sim = torch.tensor([[0.9, 0.1, 0.2],
                        [0.3, 0.2, 0.8],
                        [0.0, 0.4, 0.7]])
    off = [0.1, 0.2, 0.3, 0.8, 0.0, 0.4]
    assert diagonal_margin(sim) == pytest.approx((0.9 + 0.2 + 0.7) / 3 - sum(off) / 6)
    assert diagonal_top1(sim) == pytest.approx(2 / 3)     # row 1 prefers caption 2
    assert diagonal_top1(torch.eye(4)) == 1.0
    assert diagonal_margin(torch.full((4, 4), 0.5)) == pytest.approx(0.0)
    assert diagonal_top1(torch.full((4, 4), 0.5)) == pytest.approx(1 / 4)   # ties: first max


@pytest.mark.parametrize("sim, exc, match", [
    ([[1.0, 0.0], [0.0, 1.0]], TypeError, "sim"),
    (torch.ones(2, 3), ValueError, "sim"),
    (torch.ones(1, 1), ValueError, "sim"),
    (torch.ones(2, 2, 2), ValueError, "sim"),
    (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ValueError, "sim"),
    (torch.eye(3, dtype=torch.long), TypeError, "sim"),
])
def test_bad_sim(sim, exc, match):
    for fn in (diagonal_margin, diagonal_top1):
        with pytest.raises(exc, match=match):
            fn(sim)


def test_bad_pairs(model_and_pairs):
    model, images, captions = model_and_pairs
    with pytest.raises(ValueError, match="captions"):
        pair_similarity(model, images, captions[:-1])
    with pytest.raises(ValueError, match="captions"):
        pair_similarity(model, images, "a red circle")
    with pytest.raises(ValueError, match="images"):
        pair_similarity(model, images[0], captions[:1])
    with pytest.raises(TypeError, match="images"):
        pair_similarity(model, (images * 255).to(torch.uint8), captions)
