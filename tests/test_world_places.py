"""Where ShapeWorld puts objects: every allowed place keeps an object in its cell, primary objects
never repeat a place within a window of indices, and the masks are exactly the pixels whose
centres lie inside the shape (chapter 03)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vlm_course.world import (
    COLOUR_LIBRARY,
    ShapeWorld,
    WorldConfig,
    count_distinct_images,
    duplicate_groups,
    image_digests,
)
from vlm_course.world.render import sprite_bank
from vlm_course.world.sampling import (
    JITTER_SCALE,
    MIN_JITTER_PX,
    SUBPIXEL,
    centre_grid,
    primary_places,
)
from vlm_course.world.shapes import SDF

CARD = Path(__file__).parents[1] / "data" / "checkpoints" / "clip_tiny_shapeworld.json"


def _shipped_world(canvas: int) -> WorldConfig:
    d = json.loads(CARD.read_text())["world_config"]
    d["heldout"] = tuple(tuple(p) for p in d["heldout"])
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return WorldConfig(**{**d, "canvas": canvas})


@pytest.mark.parametrize("canvas", [48, 64])
def test_test_scenes_0_to_999_show_no_duplicate_image(canvas):
    world = ShapeWorld(_shipped_world(canvas))
    assert count_distinct_images(world, "test", range(1000)) == 1000
    assert primary_places(world.cfg, "test")[0].min() >= 1000  # the guarantee behind it


def test_a_world_too_small_says_so_and_repeats_are_found():
    cfg = WorldConfig(canvas=32, max_objects=1, test_heldout_fraction=1.0)
    places = primary_places(cfg, "test")[0]
    assert places.min() < 1000  # 225 places for a large object at canvas 32: repeats are possible
    # a permutation of the places: a same-size primary repeats a place only a multiple of
    # places[size] indices later
    spec = ShapeWorld(cfg).sample("test", range(3 * int(places.max())))
    first = {}
    for i in range(len(spec.indices)):
        key = (int(spec.size[i, 0]), float(spec.cx[i, 0]), float(spec.cy[i, 0]))
        if key in first:
            assert (i - first[key]) % places[key[0]] == 0
        first[key] = i
    # same attributes at the same place -> the same image, and the functions find it
    world = ShapeWorld(cfg)
    images = world.images("test", range(2000))
    groups = duplicate_groups(images)
    assert groups and count_distinct_images(world, "test", range(2000)) == 2000 - sum(
        len(g) - 1 for g in groups)
    for g in groups:
        assert len({image_digests(images[[i]])[0] for i in g}) == 1
        assert torch.equal(images[g[0]], images[g[1]])


@pytest.mark.parametrize("canvas", [32, 48, 64, 97, 128])
def test_every_allowed_place_keeps_the_object_inside_its_cell(canvas):
    cfg = WorldConfig(canvas=canvas, size_scale=(0.3, 0.5 - 1.5 / canvas))  # largest allowed
    first, count = centre_grid(cfg)
    assert (count >= 1).all()
    bank = sprite_bank(cfg)
    touched = (bank.coverage > 0).view(len(cfg.shapes), 2, SUBPIXEL, SUBPIXEL, bank.P, bank.P)
    cols = touched.any(dim=(0, 2, 4))  # (2, Q, P): columns any shape touches, per size / offset
    cell = canvas / 3
    for z in range(2):
        for g in range(3):
            for k in (first[z, g], first[z, g] + count[z] - 1):  # the extreme places
                origin = k // SUBPIXEL - bank.C  # first column of the sprite patch
                used = torch.nonzero(cols[z, k % SUBPIXEL]).flatten() + origin
                centres = used.double() + 0.5
                assert (centres > g * cell).all() and (centres < (g + 1) * cell).all()
        # the centres stay within the jitter window around the cell's centre
        half = max(JITTER_SCALE * (cell / 2 - cfg.size_scale[z] * cell - 1), MIN_JITTER_PX)
        for g in range(3):
            offsets = (first[z, g] + np.arange(count[z])) / SUBPIXEL - (g + 0.5) * cell
            assert np.abs(offsets).max() <= half + 1e-9
    # the largest object is limited by its cell, not by the window: in the tightest cell one step
    # further out would leave the cell (the grid is as wide as it can be)
    leaves = []
    for g in range(3):
        k = first[1, g] - 1
        used = torch.nonzero(cols[1, k % SUBPIXEL]).flatten() + k // SUBPIXEL - bank.C
        leaves.append(bool((used.double() + 0.5 < g * cell).any()))
    assert any(leaves)


def test_places_are_uniform_enough_and_objects_never_overlap():
    cfg = WorldConfig(max_objects=3)
    world = ShapeWorld(cfg)
    spec = world.sample("train", range(9000))
    cells = np.bincount(spec.cell[:, 0], minlength=9)
    assert cells.min() > 850 and cells.max() < 1150  # 1000 expected per cell
    batch = world.batch("train", range(300))
    bank = sprite_bank(cfg)
    for b in range(300):
        # every object's coloured pixels lie in its own cell, so no two objects share a pixel
        seen = torch.zeros(cfg.canvas, cfg.canvas, dtype=torch.long)
        for o in batch.objects[b]:
            cx, cy = o["center"]
            qx, qy = round(cx * SUBPIXEL), round(cy * SUBPIXEL)
            k = ((o["shape_id"] * 2 + o["size_id"]) * SUBPIXEL + qy % SUBPIXEL) * SUBPIXEL \
                + qx % SUBPIXEL
            ys, xs = torch.nonzero(bank.coverage[k] > 0, as_tuple=True)
            ys, xs = ys + qy // SUBPIXEL - bank.C, xs + qx // SUBPIXEL - bank.C
            cell = cfg.canvas / 3
            assert ((xs + 0.5) // cell == o["col"]).all() and ((ys + 0.5) // cell == o["row"]).all()
            seen[ys, xs] += 1
        assert seen.max() == 1


@pytest.mark.parametrize("canvas", [48, 64])
def test_mask_is_the_pixels_whose_centre_is_inside_the_shape(canvas):
    """The render docstring's claim: mask = coverage >= 0.5 = pixel centre inside the outline; the
    anti-aliased rim (0 < coverage < 0.5) is coloured but not in the mask."""
    cfg = WorldConfig(canvas=canvas, shapes=tuple(SDF), colours=("red", "white"), heldout=())
    batch = ShapeWorld(cfg).batch("train", range(120))
    grid = torch.arange(canvas, dtype=torch.float64) + 0.5
    rim = 0
    for b, objs in enumerate(batch.objects):
        for k, o in enumerate(objs):
            cx, cy = o["center"]
            r = o["radius"]
            d = SDF[o["shape"]]((grid[None, :] - cx) / r, (grid[:, None] - cy) / r) * r
            box = ((grid[None, :] - cx).abs() <= r + 0.5) & ((grid[:, None] - cy).abs() <= r + 0.5)
            mask = batch.instance_masks[b] == k + 1
            clear = d.abs() > 1e-6  # pixel centres exactly on the outline are float ties
            assert torch.equal(mask[clear], (d <= 0)[clear])
            # coverage from the image (plain black background): colour = coverage * rgb
            rgb = torch.tensor(COLOUR_LIBRARY[o["colour"]])
            c = int(rgb.argmax())
            cov = batch.images[b, c] / rgb[c]
            own = box & (d < 0.5)
            assert torch.equal(mask[own], (cov >= 0.5 - 1e-6)[own])
            rim += int(((cov > 0) & (cov < 0.5) & own).sum())
    assert rim > 0  # the rim exists and is outside the masks
