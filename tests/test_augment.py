"""Augmentations for image contrastive learning, checked against torchvision's functional ops."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from vlm_course.objectives.augment import (
    CAPTION_EFFECTS,
    AugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    augment,
    colour_jitter,
    random_grayscale,
    random_horizontal_flip,
    random_resized_crop,
    two_views,
)

# torchvision is a runtime dependency, so its functional ops are imported, never skipped.


def _images(B=4, H=12, W=10, seed=0):
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "ours, theirs, factors",
    [
        (adjust_brightness, TF.adjust_brightness, [0.6, 1.0, 1.3, 0.0]),
        (adjust_contrast, TF.adjust_contrast, [0.6, 1.0, 1.4, 0.0]),
        (adjust_saturation, TF.adjust_saturation, [0.6, 1.0, 1.4, 0.0]),
        (adjust_hue, TF.adjust_hue, [-0.5, -0.1, 0.0, 0.37]),
    ],
)
def test_colour_ops_match_torchvision(ours, theirs, factors):
    images = _images()
    out = ours(images, torch.tensor(factors))
    ref = torch.stack([theirs(img, f) for img, f in zip(images, factors, strict=True)])
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-6)


def test_hue_round_trip_and_grey_pixels():
    images = _images()
    torch.testing.assert_close(adjust_hue(images, torch.zeros(4)), images, rtol=0, atol=1e-6)
    grey = torch.rand(4, 1, 5, 5, generator=_gen(1)).expand(-1, 3, -1, -1)
    torch.testing.assert_close(adjust_hue(grey, torch.full((4,), 0.3)), grey, rtol=0, atol=1e-6)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = adjust_hue(red, torch.tensor([1 / 3]))  # 120 degrees: red -> green
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_flip_matches_torchvision_and_p_extremes():
    images = _images()
    torch.testing.assert_close(random_horizontal_flip(images, _gen(), p=1.0), TF.hflip(images))
    torch.testing.assert_close(random_horizontal_flip(images, _gen(), p=0.0), images)
    mixed = random_horizontal_flip(images, _gen(3), p=0.5)
    flipped = [torch.equal(m, TF.hflip(x)) for m, x in zip(mixed, images, strict=True)]
    kept = [torch.equal(m, x) for m, x in zip(mixed, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))


def test_crop_full_box_is_identity_and_crops_zoom_in():
    images = _images()
    full = random_resized_crop(images, _gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(full, images, rtol=0, atol=1e-6)
    # a constant-per-column ramp: a crop keeps the values inside the original range
    ramp = torch.linspace(0, 1, 10).expand(2, 3, 12, 10).contiguous()
    crop = random_resized_crop(ramp, _gen(), scale=(0.25, 0.25), ratio=(1.0, 1.0))
    assert crop.shape == ramp.shape
    span = crop[:, 0, 0, -1] - crop[:, 0, 0, 0]
    assert (span < 0.75).all()  # a half-width window spans about half of the ramp


def test_shapes_ranges_determinism_and_seeds():
    images = _images(B=6, H=16, W=16)
    cfg = AugmentConfig()
    for fn in (
        random_resized_crop,
        random_horizontal_flip,
        colour_jitter,
        random_grayscale,
        lambda x, g: augment(x, g, cfg),
    ):
        a, b, c = fn(images, _gen(5)), fn(images, _gen(5)), fn(images, _gen(6))
        assert a.shape == images.shape and a.dtype == images.dtype
        assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # same seed, same batch
        assert not torch.equal(a, c)  # another seed, another batch
    v1, v2 = two_views(images, _gen(0))
    assert v1.shape == v2.shape == images.shape and not torch.equal(v1, v2)


def test_zero_strength_jitter_is_identity_and_grayscale_is_grey():
    images = _images()
    same = colour_jitter(images, _gen(), brightness=0, contrast=0, saturation=0, hue=0)
    torch.testing.assert_close(same, images, rtol=0, atol=1e-6)
    grey = random_grayscale(images, _gen(), p=1.0)
    torch.testing.assert_close(grey, TF.rgb_to_grayscale(images, 3), rtol=0, atol=1e-6)
    nothing = AugmentConfig(
        crop_scale=(1, 1), crop_ratio=(1, 1), flip_p=0, jitter_p=0, grayscale_p=0
    )
    torch.testing.assert_close(augment(images, _gen(), nothing), images, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def scenes():
    from vlm_course.world import ShapeWorld, WorldConfig

    return ShapeWorld(WorldConfig(min_objects=2, max_objects=3)).batch("train", range(48))


def _object_colours(images, scenes, masks=None):
    """Nearest library colour (name) of every object's median pixel: [[name, ...], ...]."""
    from vlm_course.world import COLOUR_LIBRARY

    names, rgb = list(COLOUR_LIBRARY), torch.tensor(list(COLOUR_LIBRARY.values()))
    out = []
    masks = scenes.instance_masks if masks is None else masks
    for b, objs in enumerate(scenes.objects):
        row = []
        for k in range(len(objs)):
            pixel = images[b][:, masks[b] == k + 1].median(1).values
            row.append(names[int(torch.cdist(pixel[None], rgb).argmin())])
        out.append(row)
    return out


def test_caption_effects_hold_on_shapeworld(scenes):
    """Each documented effect is measured on ShapeWorld's ground truth (not read back)."""
    assert set(CAPTION_EFFECTS) == {"horizontal flip", "hue jitter",
                                    "saturation jitter / grayscale", "brightness / contrast",
                                    "random resized crop"}
    images, B = scenes.images, len(scenes)
    truth = [[o["colour"] for o in objs] for objs in scenes.objects]
    assert _object_colours(images, scenes) == truth  # the colour reader itself is right
    # horizontal flip: colours survive, every off-centre object changes side (left <-> right)
    flipped = random_horizontal_flip(images, _gen(), p=1.0)
    masks = scenes.instance_masks.flip(-1)
    assert _object_colours(flipped, scenes, masks) == truth
    xs = torch.arange(images.shape[-1], dtype=torch.float32)
    moved = 0
    for b, objs in enumerate(scenes.objects):
        for k, o in enumerate(objs):
            before = xs[(scenes.instance_masks[b] == k + 1).any(0)].mean()
            after = xs[(masks[b] == k + 1).any(0)].mean()
            torch.testing.assert_close(after, images.shape[-1] - 1 - before)
            if "left" in o["position"] or "right" in o["position"]:
                assert (before < images.shape[-1] / 2) != (after < images.shape[-1] / 2)
                moved += 1
    assert moved > B // 2
    # hue jitter: a shift of 0.1 turns changes the nearest colour word of some objects
    hue = _object_colours(adjust_hue(images, torch.full((B,), 0.1)), scenes)
    flat_truth = [c for row in truth for c in row]
    hue = [c for row in hue for c in row]
    assert sum(a != b for a, b in zip(hue, flat_truth, strict=True)) > B // 4
    # grayscale: every chromatic colour word becomes wrong
    grey = _object_colours(random_grayscale(images, _gen(), p=1.0), scenes)
    grey = [c for row in grey for c in row]
    chromatic = [(g, t) for g, t in zip(grey, flat_truth, strict=True)
                 if t not in ("white", "grey")]
    assert chromatic and all(g != t for g, t in chromatic)
    # brightness: darkening by 0.5 changes some colour words, but not most ("mildly")
    dark = _object_colours(adjust_brightness(images, torch.full((B,), 0.5)), scenes)
    dark = [c for row in dark for c in row]
    changed = sum(a != b for a, b in zip(dark, flat_truth, strict=True))
    assert 0 < changed < len(flat_truth)
    # crop: cropping the instance masks the same way removes whole objects from some scenes
    one_hot = torch.stack([(scenes.instance_masks == k).float() for k in (1, 2, 3)], 1)
    cropped = random_resized_crop(one_hot, _gen(3), scale=(0.2, 0.4)) > 0.5
    visible = cropped.flatten(2).any(-1).sum(1)  # objects with a pixel left, per scene
    counts = scenes.labels["count"]
    assert (visible <= counts).all() and (visible < counts).sum() > B // 4


def test_errors_name_the_argument():
    images = _images()
    with pytest.raises(ValueError, match="images"):
        random_resized_crop(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="images"):
        colour_jitter(torch.rand(2, 1, 8, 8))
    with pytest.raises(TypeError, match="images"):
        random_horizontal_flip((images * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="images"):
        augment(images.tolist())
    with pytest.raises(TypeError, match="generator"):
        random_horizontal_flip(images, generator=0)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1\.5"):
        random_horizontal_flip(images, p=1.5)
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(images, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="ratio"):
        random_resized_crop(images, ratio=(2.0, 1.0))
    with pytest.raises(ValueError, match="factor"):
        adjust_brightness(images, torch.ones(3))
    with pytest.raises(ValueError, match="shift"):
        adjust_hue(images, torch.full((4,), 0.6))
    with pytest.raises(ValueError, match="hue"):
        colour_jitter(images, hue=0.7)
    with pytest.raises(ValueError, match="brightness"):
        colour_jitter(images, brightness=-0.1)
    with pytest.raises(TypeError, match="config"):
        augment(images, config={"flip_p": 0.5})
