"""A few-shot downstream task where zero-shot CLIP is weak: ShapeWorld through a grainy camera.

Chapter 10 (transfer learning).  Transfer methods are worth their parameters only when zero-shot
transfer falls short.  The shipped tiny CLIP was pre-trained on clean renderings (flat black
background, exact colours) and is near-perfect there; photographed by a cheap, noisy camera — every
pixel plus Gaussian "sensor grain" of standard deviation ``grain`` — the same shapes fool it: its
image embeddings drift and zero-shot accuracy drops far below the clean number, although the
shapes are still plainly visible to a person.  A few labelled grainy images per class are the
"downstream data" of the survey's transfer-learning setting.

:class:`FewShotTask` builds, deterministically:

* ``few_shot(shots, seed)`` — ``shots`` images per class from the *train* split (the seed picks
  which; the k-shot sets of the CoOp protocol), and the same from *val* for choosing
  hyper-parameters (Tip-Adapter's alpha and beta);
* ``test_set()`` — a fixed test set from the *test* split;
* ``base_new()`` — the base-to-new split of CoCoOp (Zhou et al. 2022): the first half of the
  classes are *base* (train on them), the second half *new* (never seen in training; evaluated
  with their names only).

Single-object scenes, so the label (shape by default; any ``ShapeWorld.class_names`` kind) is
unambiguous.  The grain of scene ``(split, index)`` is always the same noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.splits import SPLITS

__all__ = ["TaskConfig", "FewShotTask", "add_grain", "LABELS"]

LABELS = ("shape", "colour", "size", "position", "composition")


def add_grain(images: torch.Tensor, grain: float, seeds: Sequence[int]) -> torch.Tensor:
    """Sensor grain: ``clamp(x + grain * noise, 0, 1)`` with per-pixel N(0, 1) ``noise``.

    images: (B, 3, H, W) float in [0, 1]; seeds: B ints, one noise seed per image (the same seed
    always gives the same noise).  Returns a new (B, 3, H, W) tensor; ``grain = 0`` returns a copy.
    Raises ValueError for a negative grain or a wrong number of seeds.
    """
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (B, 3, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if isinstance(grain, bool) or not isinstance(grain, (int, float)) or not grain >= 0:
        raise ValueError(f"grain must be a number >= 0, got {grain!r}")
    if len(seeds) != images.shape[0]:
        raise ValueError(f"seeds must hold one seed per image ({images.shape[0]}), "
                         f"got {len(seeds)}")
    if grain == 0:
        return images.clone()
    shape = images.shape[1:]
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s)))
                         for s in seeds])
    return (images + grain * noise.to(images.dtype)).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class TaskConfig:
    """``label``: what to classify (one of :data:`LABELS`); ``grain``: sensor-noise std
    (0 = the clean pre-training domain; the default 0.03 takes the shipped CLIP's zero-shot shape
    accuracy from 0.95 to 0.46 — weak, but not at chance); ``pool_size``: train/val scenes the
    k-shot sets are drawn from; ``test_size``: test scenes; ``seed``: the noise seed."""

    label: str = "shape"
    grain: float = 0.03
    pool_size: int = 1500
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"TaskConfig.label must be one of {LABELS}, got {self.label!r}")
        if isinstance(self.grain, bool) or not isinstance(self.grain, (int, float)) or not \
                self.grain >= 0:
            raise ValueError(f"TaskConfig.grain must be a number >= 0, got {self.grain!r}")
        for name in ("pool_size", "test_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TaskConfig.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TaskConfig.seed must be an int >= 0, got {self.seed!r}")


class FewShotTask:
    """Few-shot classification of single-object ShapeWorld scenes through a grainy camera.

    ``FewShotTask(world_cfg, TaskConfig())``: ``world_cfg`` is the pre-training world (e.g. the
    shipped checkpoint's card), used with one object per scene.  ``classnames`` lists the K
    classes; class ids index it.  Images are (n, 3, H, W) float in [0, 1], labels (n,) long.
    Raises TypeError for a world config of the wrong type.
    """

    def __init__(self, world_cfg: WorldConfig, config: TaskConfig | None = None):
        if not isinstance(world_cfg, WorldConfig):
            raise TypeError(f"world_cfg must be a WorldConfig, got {type(world_cfg).__name__}")
        self.config = TaskConfig() if config is None else config
        self.world = ShapeWorld(world_cfg.replace(min_objects=1, max_objects=1))
        self.classnames = list(self.world.class_names(self.config.label))
        self._labels: dict[tuple[str, int], torch.Tensor] = {}
        self._test: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def __repr__(self) -> str:
        c = self.config
        return (f"FewShotTask(label={c.label!r}, K={self.num_classes}, grain={c.grain}, "
                f"canvas={self.world.cfg.canvas})")

    # ------------------------------------------------------------------ scenes
    def labels(self, split: str, n: int) -> torch.Tensor:
        """(n,) long labels of scenes ``0 .. n - 1`` of ``split`` (no rendering; cached)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if (split, n) not in self._labels:
            spec = self.world.sample(split, range(n))
            S = len(self.world.cfg.shapes)
            first = {"shape": spec.shape[:, 0], "colour": spec.colour[:, 0],
                     "size": spec.size[:, 0], "position": spec.cell[:, 0],
                     "composition": spec.colour[:, 0] * S + spec.shape[:, 0]}
            self._labels[(split, n)] = torch.as_tensor(first[self.config.label].copy()).long()
        return self._labels[(split, n)]

    def images(self, split: str, indices: Sequence[int]) -> torch.Tensor:
        """(n, 3, H, W) grainy images of scenes ``indices`` of ``split``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        indices = [int(i) for i in indices]
        clean = self.world.images(split, indices)
        base = (self.config.seed * len(SPLITS) + SPLITS.index(split)) * 10**8
        return add_grain(clean, self.config.grain, [base + i for i in indices])

    def _check_classes(self, classes: Sequence[int] | None) -> list[int]:
        if classes is None:
            return list(range(self.num_classes))
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes) or \
                not all(0 <= c < self.num_classes for c in classes):
            raise ValueError(f"classes must be distinct class ids in [0, {self.num_classes}), "
                             f"got {classes!r}")
        return classes

    # ------------------------------------------------------------------ the splits
    def few_shot(self, shots: int, seed: int = 0, *, split: str = "train",
                 classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``shots`` images per class from the first ``pool_size`` scenes of ``split``.

        ``classes``: the class ids to use (default all); the returned labels index *this* list
        (0 .. len(classes) - 1).  ``seed`` picks the examples (the same seed, the same set; a
        larger ``shots`` with the same seed extends the smaller set).  Returns images
        (len(classes) * shots, 3, H, W), class-major, and labels.  Raises ValueError when a class
        has fewer than ``shots`` scenes in the pool or ``shots`` < 1.
        """
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise ValueError(f"shots must be an int >= 1, got {shots!r}")
        classes = self._check_classes(classes)
        pool = self.labels(split, self.config.pool_size)
        generator = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(len(pool), generator=generator)
        picked, labels = [], []
        for new_id, c in enumerate(classes):
            members = order[pool[order] == c]
            if len(members) < shots:
                raise ValueError(f"shots={shots} is more than the {len(members)} scenes of class "
                                 f"{self.classnames[c]!r} among the {len(pool)} {split} scenes "
                                 f"of the pool (raise TaskConfig.pool_size)")
            picked += members[:shots].tolist()
            labels += [new_id] * shots
        return self.images(split, picked), torch.tensor(labels, dtype=torch.long)

    def test_set(self, classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Test scenes ``0 .. test_size - 1`` whose class is in ``classes`` (default all), with
        labels indexing ``classes``.  Cached."""
        classes = self._check_classes(classes)
        key = tuple(classes)
        if key not in self._test:
            all_labels = self.labels("test", self.config.test_size)
            lookup = torch.full((self.num_classes,), -1, dtype=torch.long)
            lookup[torch.tensor(classes)] = torch.arange(len(classes))
            keep = torch.nonzero(lookup[all_labels] >= 0).flatten()
            self._test[key] = (self.images("test", keep.tolist()), lookup[all_labels[keep]])
        return self._test[key]

    def base_new(self) -> tuple[list[int], list[int]]:
        """CoCoOp's base-to-new split: the first ``ceil(K / 2)`` class ids are base, the rest
        new."""
        half = (self.num_classes + 1) // 2
        return list(range(half)), list(range(half, self.num_classes))

    def names(self, classes: Sequence[int]) -> list[str]:
        """Class names of ``classes``."""
        return [self.classnames[c] for c in self._check_classes(classes)]
