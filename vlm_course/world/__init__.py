"""ShapeWorld: procedural image-text scenes with full ground truth (chapter 03, COURSE_DESIGN §5).

>>> from vlm_course.world import WorldConfig, ShapeWorld
>>> batch = ShapeWorld(WorldConfig()).batch("train", range(8))

Modules: ``config`` (WorldConfig, vocabularies), ``shapes`` (signed distance functions),
``sampling`` (deterministic scenes from (seed, split, index)), ``render`` (batched rendering, masks,
boxes), ``captions`` (templates, noise, phrase parser), ``splits`` (train/val/test/heldout),
``world`` (ShapeWorld, SceneBatch, pairs), ``dataset`` (map-style dataset, collate),
``truth`` (is a caption true of a scene?), ``duplicates`` (repeated images).
"""

from .captions import caption_vocabulary, parse_mentions
from .config import (
    COLOUR_LIBRARY,
    POSITION_NAMES,
    SHAPE_LIBRARY,
    SIZE_NAMES,
    WorldConfig,
    default_heldout,
)
from .dataset import ShapeWorldDataset, collate_scenes
from .duplicates import count_distinct_images, duplicate_groups, image_digests
from .splits import CLOSED_SPLITS, SPLITS
from .truth import caption_is_true, caption_problems, truth_matrix
from .world import LABEL_KEYS, SceneBatch, ShapeWorld

__all__ = [
    "COLOUR_LIBRARY", "CLOSED_SPLITS", "LABEL_KEYS", "POSITION_NAMES", "SHAPE_LIBRARY",
    "SIZE_NAMES", "SPLITS", "SceneBatch", "ShapeWorld", "ShapeWorldDataset",
    "WorldConfig", "caption_is_true", "caption_problems", "caption_vocabulary", "collate_scenes",
    "count_distinct_images", "default_heldout", "duplicate_groups", "image_digests",
    "parse_mentions", "truth_matrix",
]
