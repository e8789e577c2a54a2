"""Datasets and loaders over ShapeWorld: items, collate, workers."""

import pytest
import torch
from torch.utils.data import DataLoader

from vlm_course.text import Tokenizer
from vlm_course.world import (
    ShapeWorld,
    ShapeWorldDataset,
    WorldConfig,
    collate_scenes,
)


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig.tiny())


@pytest.fixture(scope="module")
def tok(world):
    return Tokenizer.from_world(world.cfg)


def test_map_dataset_items_and_collate(world, tok):
    ds = ShapeWorldDataset(world, "val", size=12, tokenizer=tok, context_length=16, start=100)
    assert len(ds) == 12
    item = ds[3]
    direct = world.batch("val", [103])
    assert torch.equal(item["image"], direct.images[0])
    assert item["index"] == 103 and item["caption"] == direct.captions[0][0]
    assert item["input_ids"].shape == (16,) and item["eot_index"].dim() == 0
    assert item["labels"]["shape"] == direct.labels["shape"][0]
    assert torch.equal(item["instance_mask"], direct.instance_masks[0])
    loader = DataLoader(ds, batch_size=5, collate_fn=collate_scenes)
    batches = list(loader)
    assert [len(b["captions"]) for b in batches] == [5, 5, 2]
    b = batches[0]
    full = world.batch("val", range(100, 105))
    assert torch.equal(b["images"], full.images)
    assert torch.equal(b["instance_masks"], full.instance_masks)
    assert b["input_ids"].shape == (5, 16) and b["attention_mask"].shape == (5, 16)
    assert torch.equal(b["labels"]["count"], full.labels["count"])
    assert b["all_captions"] == full.captions and len(b["boxes"]) == 5
    assert torch.equal(b["indices"], torch.arange(100, 105))
    assert ds[-1]["index"] == 111
    with pytest.raises(IndexError):
        ds[12]


def test_workers_give_the_same_batches(world):
    ds = ShapeWorldDataset(world, "train", size=16, caption="random")
    one = list(DataLoader(ds, batch_size=4, collate_fn=collate_scenes))
    two = list(DataLoader(ds, batch_size=4, collate_fn=collate_scenes, num_workers=2))
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a["images"], b["images"]) and a["captions"] == b["captions"]


def test_random_caption_is_reproducible_and_changes_with_epoch(world):
    ds = ShapeWorldDataset(world, "train", size=64, caption="random", masks=False)
    first = [s["caption"] for s in ds.__getitems__(range(64))]
    assert first == [s["caption"] for s in ds.__getitems__(range(64))]
    ds.set_epoch(1)
    second = [s["caption"] for s in ds.__getitems__(range(64))]
    assert first != second
    assert all(s["instance_mask"] is None for s in ds.__getitems__([0, 1]))
    fixed = ShapeWorldDataset(world, "train", size=4, caption=2)
    assert fixed[0]["caption"] == world.batch("train", [0]).captions[0][2]


def test_bad_arguments(world):
    with pytest.raises(ValueError, match="size"):
        ShapeWorldDataset(world, size=0)
    with pytest.raises(ValueError, match="split"):
        ShapeWorldDataset(world, split="dev")
    with pytest.raises(ValueError, match="caption"):
        ShapeWorldDataset(world, caption=9)
    with pytest.raises(ValueError, match="samples"):
        collate_scenes([])
