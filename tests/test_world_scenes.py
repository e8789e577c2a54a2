"""ShapeWorld scenes: shapes, range, determinism (also across processes) and ground-truth
consistency."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vlm_course.world import COLOUR_LIBRARY, ShapeWorld, WorldConfig
from vlm_course.world.shapes import SDF


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig(background="mixed"))


@pytest.fixture(scope="module")
def batch(world):
    return world.batch("train", range(64))


def test_batch_contract(world, batch):
    B, H = 64, world.cfg.canvas
    assert batch.images.shape == (B, 3, H, H) and batch.images.dtype == torch.float32
    assert torch.isfinite(batch.images).all()
    assert batch.images.min() >= 0.0 and batch.images.max() <= 1.0
    assert batch.instance_masks.shape == (B, H, H) and batch.instance_masks.dtype == torch.long
    assert batch.semantic_masks.shape == (B, H, H) and batch.semantic_masks.dtype == torch.long
    assert len(batch) == B and len(batch.captions) == B and len(batch.objects) == B
    for key in ("shape", "colour", "size", "position", "count"):
        assert batch.labels[key].shape == (B,) and batch.labels[key].dtype == torch.long
    assert batch.labels["shape"].max() < len(world.cfg.shapes)
    assert batch.labels["colour"].max() < len(world.cfg.colours)
    assert set(batch.labels["count"].tolist()) == {1, 2, 3}
    for caps in batch.captions:
        assert len(caps) >= 5 and len(set(caps)) == len(caps)
    assert bool(batch.textured.any()) and not bool(batch.textured.all())


def test_labels_are_the_primary_object(batch):
    for b, objs in enumerate(batch.objects):
        o = objs[0]
        assert batch.labels["shape"][b] == o["shape_id"]
        assert batch.labels["colour"][b] == o["colour_id"]
        assert batch.labels["size"][b] == o["size_id"]
        assert batch.labels["position"][b] == o["cell"]
        assert batch.labels["count"][b] == len(objs)


def test_determinism_across_calls_and_subsets(world, batch):
    again = world.batch("train", range(64))
    assert torch.equal(again.images, batch.images)
    assert again.captions == batch.captions
    subset = world.batch("train", [5, 3, 60])
    assert torch.equal(subset.images, batch.images[[5, 3, 60]])
    assert subset.captions == [batch.captions[i] for i in (5, 3, 60)]
    assert torch.equal(world.images("train", [5, 3]), batch.images[[5, 3]])
    other_seed = ShapeWorld(world.cfg.replace(seed=1)).batch("train", range(64))
    assert not torch.equal(other_seed.images, batch.images)
    test = world.batch("test", range(64))
    assert not torch.equal(test.images, batch.images)


def test_determinism_across_processes(world, batch):
    code = (
        "import json; from vlm_course.world import ShapeWorld, WorldConfig\n"
        "b = ShapeWorld(WorldConfig(background='mixed')).batch('train', [0, 7, 63])\n"
        "print(json.dumps({'sum': [float(x) for x in b.images.double().sum((1, 2, 3))],"
        " 'captions': b.captions}))\n"
    )
    env_out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "1",
                                              "PATH": ""})
    other = json.loads(env_out.stdout)
    sums = batch.images[[0, 7, 63]].double().sum((1, 2, 3)).tolist()
    assert np.allclose(other["sum"], sums, rtol=0, atol=1e-6)
    assert other["captions"] == [batch.captions[i] for i in (0, 7, 63)]


def test_masks_boxes_and_colours_agree(world, batch):
    cfg = world.cfg
    for b, objs in enumerate(batch.objects):
        inst = batch.instance_masks[b]
        assert int(inst.max()) == len(objs)  # every object is visible, ids are 1..n
        assert batch.boxes[b].shape == (len(objs), 4)
        for k, o in enumerate(objs):
            mask = inst == k + 1
            assert mask.sum() > 4
            ys, xs = torch.nonzero(mask, as_tuple=True)
            x0, y0, x1, y1 = batch.boxes[b][k].tolist()
            # box encloses the mask tightly (exclusive right/bottom edges)
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert o["box"] == [x0, y0, x1, y1]
            # mask pixels carry the object's colour (the median pixel is exactly it)
            pixels = batch.images[b][:, mask]  # (3, n_pixels)
            median = pixels.median(dim=1).values
            torch.testing.assert_close(median, torch.tensor(COLOUR_LIBRARY[o["colour"]]))
            # the semantic mask says the same shape on exactly the instance pixels
            assert (batch.semantic_masks[b][mask] == 1 + o["shape_id"]).all()
            # the object's centre lies inside its box and its grid cell
            cx, cy = o["center"]
            cell = cfg.canvas / 3
            assert x0 <= cx <= x1 and y0 <= cy <= y1
            assert o["col"] * cell < cx < (o["col"] + 1) * cell
        assert ((batch.semantic_masks[b] == 0) == (inst == 0)).all()
    # the plain background is black, away from the objects
    plain = (~batch.textured).nonzero().flatten()
    far = batch.instance_masks[plain] == 0
    assert batch.images[plain].amax(1)[far].max() < 0.6  # only anti-aliased edges are non-zero


def test_objects_do_not_share_cells(batch):
    for objs in batch.objects:
        cells = [o["cell"] for o in objs]
        assert len(set(cells)) == len(cells)


@pytest.mark.parametrize("canvas", [32, 48, 128])
def test_other_canvas_sizes(canvas):
    b = ShapeWorld(WorldConfig(canvas=canvas)).batch("val", range(8))
    assert b.images.shape == (8, 3, canvas, canvas)
    for k in range(8):
        assert int(b.instance_masks[k].max()) == len(b.objects[k])


def test_every_shape_sdf_is_negative_at_centre_and_positive_outside():
    x = torch.tensor([0.0, 1.2, 0.0, -1.2, 1.3])
    y = torch.tensor([0.1, 0.0, 1.2, 0.0, 1.3])
    for name, sdf in SDF.items():
        d = sdf(x, y)
        assert torch.isfinite(d).all()
        if name != "ring":
            assert d[0] < 0, name
        else:
            assert d[0] > 0 and sdf(torch.tensor(0.75), torch.tensor(0.0)) < 0
        assert (d[1:] > 0).all(), name


def test_shapes_are_distinct_pixel_patterns():
    world = ShapeWorld(WorldConfig(min_objects=1, max_objects=1))
    from vlm_course.world.render import sprite_bank

    bank = sprite_bank(world.cfg).coverage.view(8, 2, 16, -1)[:, :, 0]  # (S, sizes, P*P)
    for z in range(2):
        dist = torch.cdist(bank[:, z], bank[:, z])
        off = dist + torch.eye(8) * 1e9
        assert off.min() > 2.0  # at least a few pixels differ between any two shapes


def test_bad_split_and_indices(world):
    with pytest.raises(ValueError, match="split"):
        world.batch("training", [0])
    with pytest.raises(TypeError, match="indices"):
        world.batch("train", 3)
    with pytest.raises(ValueError, match="indices"):
        world.batch("train", [-1])
    with pytest.raises(TypeError, match="cfg"):
        ShapeWorld({"canvas": 64})


def test_class_names_and_prompts(world):
    assert world.class_names("shape") == world.cfg.shapes
    assert len(world.class_names("composition")) == 64
    assert world.prompts("colour")[5] == "a photo of an orange"
    assert world.prompts("shape", "a {} shape")[0] == "a circle shape"
    with pytest.raises(ValueError, match="kind"):
        world.class_names("texture")
    with pytest.raises(ValueError, match="template"):
        world.prompts("shape", "a photo")


def test_compose_a_scene_by_attributes(world):
    objs = [{"shape": "star", "colour": "red", "size": "large", "position": "centre"},
            {"shape": "circle", "colour": "blue", "size": "small", "position": "top left"}]
    scene = world.compose(objs)
    assert scene.images.shape == (1, 3, 64, 64) and len(scene.captions[0]) >= 5
    assert [o["shape"] for o in scene.objects[0]] == ["star", "circle"]
    assert scene.labels["position"].tolist() == [4] and scene.labels["count"].tolist() == [2]
    centre = scene.images[0, :, 32, 32]
    torch.testing.assert_close(centre, torch.tensor(COLOUR_LIBRARY["red"]))
    assert int(scene.instance_masks[0, 32, 32]) == 1 and int(scene.instance_masks[0, 10, 10]) == 2
    assert any("left of" in c or "above" in c for c in scene.captions[0])
    with pytest.raises(ValueError, match="shape"):
        world.compose([{"shape": "blob", "colour": "red", "size": "large", "position": "centre"}])
    with pytest.raises(ValueError, match="distinct positions"):
        world.compose([objs[0], objs[0]])
