"""Held-out compositions: never in train/val images or captions, present in test and heldout."""

import pytest
import torch

from vlm_course.world import COLOUR_LIBRARY, ShapeWorld, WorldConfig, parse_mentions


@pytest.fixture(scope="module")
def cfg():
    return WorldConfig(caption_noise=0.3)


@pytest.mark.parametrize("split", ["train", "val"])
def test_heldout_absent_from_closed_splits(cfg, split):
    held = set(cfg.heldout)
    batch = ShapeWorld(cfg).batch(split, range(1500))
    seen = set()
    for b, objs in enumerate(batch.objects):
        for o in objs:
            assert (o["colour"], o["shape"]) not in held and not o["heldout"]
            seen.add((o["colour"], o["shape"]))
        for cap in batch.captions[b]:
            for m in parse_mentions(cap, cfg):
                if "colour" in m:
                    assert (m["colour"], m["shape"]) not in held, cap
    assert batch.labels["heldout"].sum() == 0
    # all 56 allowed compositions do occur
    assert len(seen) == 64 - len(held)


def test_heldout_absent_from_train_pixels(cfg):
    """Pixel check: the colour inside each object's mask never pairs with a held-out shape."""
    batch = ShapeWorld(cfg).batch("train", range(300))
    rgb = torch.tensor([COLOUR_LIBRARY[c] for c in cfg.colours])
    held = set(cfg.heldout)
    for b, objs in enumerate(batch.objects):
        for k in range(len(objs)):
            mask = batch.instance_masks[b] == k + 1
            colour = batch.images[b][:, mask].median(1).values
            c = cfg.colours[int(torch.cdist(colour[None], rgb).argmin())]
            shape = cfg.shapes[int(batch.semantic_masks[b][mask][0]) - 1]
            assert (c, shape) not in held


def test_test_split_contains_heldout(cfg):
    test = ShapeWorld(cfg).batch("test", range(1000))
    frac = test.labels["heldout"].float().mean().item()
    print(f"held-out primary objects in test: {frac:.3f}")
    assert 0.43 < frac < 0.57
    comps = {(test.objects[b][0]["colour"], test.objects[b][0]["shape"])
             for b in range(1000) if test.labels["heldout"][b]}
    assert comps == set(cfg.heldout)
    heldout = ShapeWorld(cfg).batch("heldout", range(200))
    assert heldout.labels["heldout"].all()


def test_test_fraction_is_configurable():
    cfg = WorldConfig(test_heldout_fraction=1.0)
    assert ShapeWorld(cfg).batch("test", range(50)).labels["heldout"].all()
    empty = WorldConfig(heldout=())
    assert ShapeWorld(empty).batch("test", range(50)).labels["heldout"].sum() == 0
    with pytest.raises(ValueError, match="heldout"):
        ShapeWorld(empty).batch("heldout", [0])
