"""WorldConfig validation: every bad value raises ValueError naming the field and what is
allowed."""

import pytest

from vlm_course.world import COLOUR_LIBRARY, SHAPE_LIBRARY, WorldConfig, default_heldout


def test_defaults_match_the_contract():
    cfg = WorldConfig()
    assert cfg.canvas == 64 and len(cfg.shapes) == 8 and len(cfg.colours) == 8
    assert cfg.sizes == ("small", "large") and len(cfg.positions) == 9
    assert (cfg.min_objects, cfg.max_objects) == (1, 3)
    assert len(cfg.heldout) == 8 and len(cfg.compositions) == 64
    # every colour and every shape keeps 7 train partners
    assert {c for c, _ in cfg.heldout} == set(cfg.colours)
    assert {s for _, s in cfg.heldout} == set(cfg.shapes)
    # the documented "shifted diagonal", written out (not recomputed by the same formula)
    assert cfg.heldout == (("red", "triangle"), ("green", "diamond"), ("blue", "cross"),
                           ("yellow", "star"), ("purple", "heart"), ("orange", "ring"),
                           ("cyan", "circle"), ("white", "square"))
    assert default_heldout(("red", "green"), ("circle", "square", "star")) == (
        ("red", "star"), ("green", "circle"))
    assert default_heldout(("red",), ("circle", "square")) == ()
    # heldout_ids and compositions agree: the id of a pair indexes that pair
    assert {cfg.compositions[i] for i in cfg.heldout_ids} == set(cfg.heldout)
    assert cfg.heldout_ids[0] == 2 and cfg.heldout_ids[-1] == 7 * 8 + 1


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"colours": ("red", "magenta")}, "colours", "red"),
        ({"shapes": ("circle", "blob")}, "shapes", "circle"),
        ({"shapes": ("circle",)}, "shapes", "at least 2"),
        ({"colours": ("red", "red")}, "colours", "distinct"),
        ({"min_objects": 0}, "min_objects", "[1, 9]"),
        ({"max_objects": 10}, "max_objects", "[1, 9]"),
        ({"min_objects": 3, "max_objects": 2}, "max_objects", "[3, 9]"),
        ({"canvas": 16}, "canvas", "[32, 128]"),
        ({"canvas": 256}, "canvas", "[32, 128]"),
        ({"canvas": 32, "size_scale": (0.2, 0.4)}, "canvas", "canvas >="),
        ({"canvas": 32, "size_scale": (0.3, 0.49)}, "size_scale", "large size <="),
        ({"size_scale": (0.4, 0.3)}, "size_scale", "small < large"),
        ({"caption_noise": -0.1}, "caption_noise", "[0, 1]"),
        ({"caption_noise": 1.5}, "caption_noise", "[0, 1]"),
        ({"test_heldout_fraction": 2.0}, "test_heldout_fraction", "[0, 1]"),
        ({"background": "stripes"}, "background", "plain"),
        ({"n_captions": 3}, "n_captions", "[5, 8]"),
        ({"seed": -1}, "seed", "[0,"),
        ({"heldout": (("red", "blob"),)}, "heldout", "(colour, shape) pairs"),
        ({"heldout": tuple(("red", s) for s in WorldConfig().shapes)}, "heldout", "red"),
    ],
)
def test_bad_config_names_field_and_allowed_values(changes, field, allowed):
    with pytest.raises(ValueError) as info:
        WorldConfig(**changes)
    message = str(info.value)
    assert f"WorldConfig.{field}" in message
    assert allowed in message


def test_unknown_colour_lists_the_library():
    with pytest.raises(ValueError) as info:
        WorldConfig(colours=("red", "green", "mauve"))
    assert "mauve" in str(info.value) and all(c in str(info.value) for c in COLOUR_LIBRARY)


def test_custom_vocabulary_and_heldout():
    cfg = WorldConfig(shapes=SHAPE_LIBRARY[:4], colours=("red", "green", "blue"),
                      heldout=(("red", "circle"),), canvas=48)
    assert cfg.heldout == (("red", "circle"),)
    assert len(cfg.compositions) == 12
    assert WorldConfig(heldout=()).heldout == ()
    assert cfg.replace(seed=3).seed == 3 and cfg.replace(seed=3).shapes == cfg.shapes
    assert WorldConfig.tiny().canvas == 32
    assert WorldConfig().to_dict()["canvas"] == 64
