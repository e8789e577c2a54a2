"""ShapeWorld: the course's embedded image-text world with complete ground truth.

Chapter 03 (datasets); used by every later chapter for pre-training and evaluation
(COURSE_DESIGN §5). A scene is 1-3 objects (shape, colour, size, 3x3 grid position) on a plain or
textured background; ``ShapeWorld(cfg).batch(split, indices)`` samples, renders and describes a
batch of scenes, always the same for the same ``(cfg.seed, split, index)``.

>>> world = ShapeWorld(WorldConfig())
>>> batch = world.batch("train", range(4))
>>> batch.images.shape
torch.Size([4, 3, 64, 64])
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vlm_course.text.articles import fix_articles

from .captions import make_captions, one_caption
from .config import WorldConfig
from .render import render
from .sampling import (
    CAPTION_SALT,
    SUBPIXEL,
    SceneSpec,
    check_indices,
    mix64,
    sample_scenes,
    scene_keys,
)
from .splits import CLOSED_SPLITS, SPLITS

Tensor = torch.Tensor
#: Salt of the keys that pick the pre-training caption of a scene (see :meth:`ShapeWorld.pairs`).
PAIR_SALT = 0x9A125
LABEL_KEYS = ("shape", "colour", "size", "position", "count", "composition", "heldout")


@dataclass
class SceneBatch:
    """A batch of B scenes with everything known about them.

    images: (B, 3, H, W) float32 in [0, 1], RGB.
    captions: B lists of ``cfg.n_captions`` (>= 5) distinct captions; true of the image except the
        changes listed in ``caption_noise``.
    labels: dict of (B,) int64 tensors for the primary object (object 0): "shape" (index into
        cfg.shapes), "colour" (cfg.colours), "size" (0 small, 1 large), "position" (cell id
        3 * row + col, index into cfg.positions), "composition" (colour * S + shape), "heldout"
        (1 if that pair is held out); and "count" (number of objects, 1..9).
    instance_masks: (B, H, W) int64, 0 = background, k = object k - 1.
    semantic_masks: (B, H, W) int64, 0 = background, 1 + shape id.
    boxes: B tensors of shape (n_b, 4) float32 xyxy pixel boxes (exclusive right/bottom edges).
    objects: B lists of per-object dicts: shape, colour, size, position (names), shape_id,
        colour_id, size_id, cell, row, col, center (x, y pixels), radius (pixels), box, heldout.
    caption_noise: B lists of noise records ``{"caption", "object", "kind", "true", "noisy"}``.
    split, indices: where the scenes come from; textured: (B,) bool background style.
    """

    images: Tensor
    captions: list[list[str]]
    labels: dict[str, Tensor]
    instance_masks: Tensor | None
    semantic_masks: Tensor | None
    boxes: list[Tensor] | None
    objects: list[list[dict]]
    caption_noise: list[list[dict]]
    split: str
    indices: list[int]
    textured: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))

    def __len__(self) -> int:
        return self.images.shape[0]


class ShapeWorld:
    """Deterministic scene generator for one :class:`WorldConfig` (nothing is stored on disk).

    Splits: "train", "val", "test" and "heldout" (see ``vlm_course.world.splits``).
    """

    def __init__(self, cfg: WorldConfig | None = None) -> None:
        if cfg is None:
            cfg = WorldConfig()
        if not isinstance(cfg, WorldConfig):
            raise TypeError(f"cfg: expected a WorldConfig, got {type(cfg).__name__}")
        self.cfg = cfg

    def __repr__(self) -> str:
        c = self.cfg
        return (f"ShapeWorld(canvas={c.canvas}, shapes={len(c.shapes)}, colours={len(c.colours)}, "
                f"objects={c.min_objects}-{c.max_objects}, seed={c.seed})")

    def sample(self, split: str, indices: Sequence[int]) -> SceneSpec:
        """The attributes of the scenes (NumPy arrays), without rendering."""
        return sample_scenes(self.cfg, split, indices)

    def images(self, split: str, indices: Sequence[int]) -> Tensor:
        """Only the images, (B, 3, H, W) float32 in [0, 1]: the fastest path."""
        return render(self.cfg, self.sample(split, indices), with_masks=False).images

    def batch(self, split: str, indices: Sequence[int], masks: bool = True) -> SceneBatch:
        """Scenes ``indices`` of ``split`` with images, captions and all ground truth.

        ``masks=False`` skips the per-pixel ground truth (instance/semantic masks and boxes are
        then None, and each object's "box" is None): faster, for pre-training streams.
        """
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        idx = check_indices(indices)
        spec = self.sample(split, idx)
        out = render(self.cfg, spec, with_masks=masks)
        objects = self._objects(spec, out.boxes)
        caption_keys = scene_keys(self.cfg.seed, split, idx, salt=CAPTION_SALT)
        captions, noise = [], []
        closed = split in CLOSED_SPLITS
        for b, objs in enumerate(objects):
            rng = random.Random(int(caption_keys[b]))
            caps, rec = make_captions(objs, bool(spec.textured[b]), self.cfg, rng, closed)
            captions.append(caps)
            noise.append(rec)
        return SceneBatch(
            images=out.images, captions=captions, labels=self._labels(spec),
            instance_masks=out.instance_masks, semantic_masks=out.semantic_masks,
            boxes=None if out.boxes is None else
            [out.boxes[b, : int(spec.n_objects[b])].clone() for b in range(len(idx))],
            objects=objects, caption_noise=noise, split=split, indices=idx.tolist(),
            textured=torch.from_numpy(spec.textured.copy()),
        )

    def pairs(self, split: str, indices: Sequence[int], *, seed: int = 0
              ) -> tuple[Tensor, list[str]]:
        """The pre-training view of scenes ``indices``: ``(images (B,3,H,W) float32 in [0, 1],
        B captions)``, one caption per scene and nothing else (no masks, no object dicts, no
        unused captions), the fastest path from the world to a CLIP batch.

        Each caption is drawn by :func:`~vlm_course.world.captions.one_caption`, distributed like a
        uniform pick among the scene's :meth:`batch` captions (exactly so for scenes of one or two
        objects; see there), with a generator keyed by
        ``(cfg.seed, split, index)`` and the training run's ``seed``: the same arguments always
        give the same pairs, whatever the other indices of the call.

        Raises:
            ValueError: unknown ``split``, or indices out of range.
            TypeError: ``indices`` is not a sequence of ints, or ``seed`` is not an int.
        """
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise TypeError(f"seed: expected an int >= 0 (the training run's seed), got {seed!r}")
        idx = check_indices(indices)
        spec = self.sample(split, idx)
        images = render(self.cfg, spec, with_masks=False).images
        keys = scene_keys(self.cfg.seed, split, idx, salt=PAIR_SALT)
        keys = mix64(keys ^ mix64(np.array([seed], dtype=np.uint64)))
        c, closed = self.cfg, split in CLOSED_SPLITS
        captions = []
        for b in range(len(idx)):
            objs = []
            for k in range(int(spec.n_objects[b])):
                cell = int(spec.cell[b, k])
                objs.append({"shape": c.shapes[int(spec.shape[b, k])],
                             "colour": c.colours[int(spec.colour[b, k])],
                             "size": c.sizes[int(spec.size[b, k])],
                             "position": c.positions[cell], "row": cell // 3, "col": cell % 3})
            text, _ = one_caption(objs, bool(spec.textured[b]), c, random.Random(int(keys[b])),
                                  closed)
            captions.append(text)
        return images, captions

    def compose(self, objects: Sequence[dict], textured: bool = False, seed: int = 0) -> SceneBatch:
        """One hand-made scene: ``objects`` are dicts with "shape", "colour", "size" and
        "position" names (e.g. ``{"shape": "star", "colour": "red", "size": "large",
        "position": "centre"}``), each in its own grid cell, centred in it. Returns a SceneBatch
        of B = 1 (split "custom"); ``seed`` picks the captions. For widgets and unit checks.
        """
        c = self.cfg
        if not 1 <= len(objects) <= len(c.positions):
            raise ValueError(f"objects: expected 1..{len(c.positions)} object dicts, "
                             f"got {len(objects)}")
        ids = {"shape": c.shapes, "colour": c.colours, "size": c.sizes, "position": c.positions}
        rows = []
        for k, obj in enumerate(objects):
            row = []
            for key, names in ids.items():
                if obj.get(key) not in names:
                    raise ValueError(f"objects[{k}][{key!r}]: expected one of {names}, "
                                     f"got {obj.get(key)!r}")
                row.append(names.index(obj[key]))
            rows.append(row)
        arr = np.array(rows, dtype=np.int64)[None]  # (1, M, 4): shape, colour, size, cell
        cells = arr[0, :, 3]
        if len(set(cells.tolist())) != len(cells):
            raise ValueError("objects: expected distinct positions, "
                             f"got {[o['position'] for o in objects]}")
        side = c.canvas / 3.0
        cx = ((cells % 3 + 0.5) * side * SUBPIXEL).round() / SUBPIXEL
        cy = ((cells // 3 + 0.5) * side * SUBPIXEL).round() / SUBPIXEL
        comp = arr[0, :, 1] * len(c.shapes) + arr[0, :, 0]
        spec = SceneSpec(
            split="custom", indices=np.zeros(1, dtype=np.int64), keys=np.zeros(1, dtype=np.uint64),
            n_objects=np.array([len(objects)]), shape=arr[..., 0], colour=arr[..., 1],
            size=arr[..., 2], cell=arr[..., 3], cx=cx[None].astype(np.float32),
            cy=cy[None].astype(np.float32),
            radius=(np.asarray(c.size_scale)[arr[..., 2]] * side).astype(np.float32),
            textured=np.array([bool(textured)]), texture=np.full((1, 6), 0.37),
            held=np.isin(comp, c.heldout_ids)[None],
        )
        out = render(c, spec, with_masks=True)
        objs = self._objects(spec, out.boxes)
        caps, noise = make_captions(objs[0], bool(textured), c, random.Random(seed), False)
        return SceneBatch(
            images=out.images, captions=[caps], labels=self._labels(spec),
            instance_masks=out.instance_masks, semantic_masks=out.semantic_masks,
            boxes=[out.boxes[0, : len(objects)].clone()], objects=objs, caption_noise=[noise],
            split="custom", indices=[0], textured=torch.tensor([bool(textured)]),
        )

    def _labels(self, spec: SceneSpec) -> dict[str, Tensor]:
        S = len(self.cfg.shapes)
        first = {
            "shape": spec.shape[:, 0], "colour": spec.colour[:, 0], "size": spec.size[:, 0],
            "position": spec.cell[:, 0], "count": spec.n_objects,
            "composition": spec.colour[:, 0] * S + spec.shape[:, 0],
            "heldout": spec.held[:, 0].astype("int64"),
        }
        return {k: torch.as_tensor(first[k].copy(), dtype=torch.long) for k in LABEL_KEYS}

    def _objects(self, spec: SceneSpec, boxes: Tensor | None) -> list[list[dict]]:
        c = self.cfg
        rows = []
        for b in range(len(spec.indices)):
            objs = []
            for k in range(int(spec.n_objects[b])):
                s, col, z, cell = (int(spec.shape[b, k]), int(spec.colour[b, k]),
                                   int(spec.size[b, k]), int(spec.cell[b, k]))
                objs.append({
                    "shape": c.shapes[s], "colour": c.colours[col], "size": c.sizes[z],
                    "position": c.positions[cell], "shape_id": s, "colour_id": col, "size_id": z,
                    "cell": cell, "row": cell // 3, "col": cell % 3,
                    "center": (float(spec.cx[b, k]), float(spec.cy[b, k])),
                    "radius": float(spec.radius[b, k]),
                    "box": None if boxes is None else boxes[b, k].tolist(),
                    "heldout": bool(spec.held[b, k]),
                })
            rows.append(objs)
        return rows

    def class_names(self, kind: str = "shape") -> tuple[str, ...]:
        """Names for a label kind: "shape", "colour", "size", "position" or "composition"."""
        c = self.cfg
        table = {"shape": c.shapes, "colour": c.colours, "size": c.sizes, "position": c.positions,
                 "composition": tuple(f"{a} {b}" for a, b in c.compositions)}
        if kind not in table:
            raise ValueError(f"kind: expected one of {tuple(table)}, got {kind!r}")
        return table[kind]

    def prompts(self, kind: str = "shape", template: str = "a photo of a {}") -> list[str]:
        """Zero-shot prompts, one per class of ``kind``: ``template.format(name)``."""
        if "{}" not in template:
            raise ValueError(f"template: expected a string with one '{{}}', got {template!r}")
        return [fix_articles(template.format(name)) for name in self.class_names(kind)]
