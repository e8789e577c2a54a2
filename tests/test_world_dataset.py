"""Datasets and loaders over ShapeWorld: items, collate, workers, and duplicate-free sharding."""

import pytest
import torch
from torch.utils.data import DataLoader

from vlm_course.text import Tokenizer
from vlm_course.world import (
    ShapeWorld,
    ShapeWorldDataset,
    ShapeWorldStream,
    WorldConfig,
    collate_scenes,
)
from vlm_course.world.dataset import resolve_rank


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


def _indices(stream, num_workers):
    loader = DataLoader(stream, batch_size=None, num_workers=num_workers)
    return [i for batch in loader for i in batch["indices"].tolist()]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stream_shards_ranks_and_workers_without_duplicates(world, tok, num_workers):
    seen = []
    for rank in range(2):
        stream = ShapeWorldStream(world, batch_size=4, num_samples=50, tokenizer=tok,
                                  rank=rank, world_size=2)
        got = _indices(stream, num_workers)
        assert got, "every rank gets data"
        seen += got
    assert sorted(seen) == list(range(50))  # complete and no duplicates


def test_stream_batches_match_the_world(world, tok):
    stream = ShapeWorldStream(world, "test", batch_size=8, num_samples=8, tokenizer=tok,
                              caption="first", start=40, masks=True)
    (batch,) = list(stream)
    full = world.batch("test", range(40, 48))
    assert torch.equal(batch["images"], full.images)
    assert batch["captions"] == [c[0] for c in full.captions]
    assert batch["input_ids"].shape == (8, 32)
    assert torch.equal(batch["instance_masks"], full.instance_masks)
    infinite = iter(ShapeWorldStream(world, batch_size=2))
    for _ in range(3):
        assert next(infinite)["images"].shape == (2, 3, 32, 32)


def test_rank_defaults_follow_torch_distributed(world, tmp_path):
    assert resolve_rank(None, None) == (0, 1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path}/store",
                                         rank=0, world_size=1)
    try:
        stream = ShapeWorldStream(world, batch_size=3, num_samples=7)
        assert (stream.rank, stream.world_size) == (0, 1)
        assert sorted(_indices(stream, 0)) == list(range(7))
    finally:
        torch.distributed.destroy_process_group()


def test_bad_arguments(world):
    with pytest.raises(ValueError, match="size"):
        ShapeWorldDataset(world, size=0)
    with pytest.raises(ValueError, match="split"):
        ShapeWorldDataset(world, split="dev")
    with pytest.raises(ValueError, match="caption"):
        ShapeWorldDataset(world, caption=9)
    with pytest.raises(TypeError, match="world"):
        ShapeWorldStream("world")
    with pytest.raises(ValueError, match="batch_size"):
        ShapeWorldStream(world, batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        ShapeWorldStream(world, rank=2, world_size=2)
    with pytest.raises(ValueError, match="samples"):
        collate_scenes([])


def test_stream_resolves_default_rank_when_iteration_starts(world, monkeypatch):
    import pickle

    dist = torch.distributed
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    stream = ShapeWorldStream(world, batch_size=4, num_samples=16)    # built before init
    assert (stream.rank, stream.world_size) == (0, 1)
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)          # "init_process_group"
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert (stream.rank, stream.world_size) == (1, 2)
    assert stream.shard() == (1, 2)
    assert _indices(stream, 0) == [4, 5, 6, 7, 12, 13, 14, 15]        # rank 1's blocks only
    pinned = pickle.loads(pickle.dumps(stream))        # what a spawned worker receives
    monkeypatch.setattr(dist, "is_initialized", lambda: False)         # (no group in the worker)
    assert (pinned.rank, pinned.world_size) == (1, 2) and pinned.shard() == (1, 2)
    assert (stream.rank, stream.world_size) == (0, 1)  # still lazy in this process
    explicit = ShapeWorldStream(world, batch_size=4, num_samples=16, rank=0, world_size=2)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    assert explicit.shard() == (0, 2)                   # explicit values are never overridden
    with pytest.raises(ValueError, match="rank"):
        ShapeWorldStream(world, rank=-1)
    with pytest.raises(ValueError, match="world_size"):
        ShapeWorldStream(world, world_size=0)
