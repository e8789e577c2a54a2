"""The supervised recipe: ShapeWorld images with their labels and the cross-entropy step.

Chapter 01 (the paradigms of visual recognition): supervised pre-training, the paradigm of a
network trained on ImageNet's labels (He et al. 2016) and then fine-tuned on another task.  Plugs
it into the one training loop (:func:`vlm_course.training.loop.train`):

* :class:`LabelledBatches` — the batch of step ``s`` is the images of ShapeWorld train scenes
  ``s*B .. s*B + B - 1`` (rank ``r`` of ``R`` takes its contiguous slice) with a ``(b, T)`` int64
  label matrix, one column per task (``shape``, ``colour``, ``size``, ``position`` of the
  primary object, ``count`` the number of objects minus the world's ``min_objects``);
* :func:`step` — the sum over tasks of the cross-entropy of each task's logits
  (:meth:`~vlm_course.models.classifier.ImageClassifier.split_logits`);
* :data:`PRESETS` ``tiny`` — the number of objects and the primary object's colour and size in
  48x48 scenes of 1-3 objects: a task that never shows a shape label, so a shape classifier
  fine-tuned from it is honestly "pre-trained on another task"; ``tiny_shape`` — the shape of
  single-object scenes (the pre-training for a task on other images, e.g. scikit-learn's digits);
  ``tiny_shape_shifted`` — the shape of single objects on textured backgrounds in four of the
  eight colours: the pre-training of chapter 01's ShapeWorld task (same label names, another
  image distribution);
* :func:`evaluate` — test accuracy of every task, for a shipped checkpoint's card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from vlm_course.models.classifier import ClassifierConfig, ImageClassifier
from vlm_course.recipes import RecipePreset
from vlm_course.training.data import scene_indices
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig

__all__ = ["PRESETS", "TASKS", "LabelledBatches", "batches", "build_model", "evaluate",
           "model_from_config", "num_classes", "step", "task_labels"]

#: Label kinds a preset may train on (the primary object's labels of a ShapeWorld scene).
TASKS: tuple[str, ...] = ("shape", "colour", "size", "position", "count")


def num_classes(world: WorldConfig, tasks: Sequence[str]) -> tuple[int, ...]:
    """Classes per task of ``world`` (e.g. 8 shapes, 8 colours, 2 sizes, 9 positions, and
    ``max_objects - min_objects + 1`` counts).

    Raises ValueError for a task outside :data:`TASKS` or an empty ``tasks``.
    """
    if isinstance(tasks, str) or not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be a non-empty list drawn from {TASKS}, got {tasks!r}")
    table = {"shape": world.shapes, "colour": world.colours, "size": world.sizes,
             "position": world.positions,
             "count": range(world.min_objects, world.max_objects + 1)}
    return tuple(len(table[t]) for t in tasks)


def _preset(tasks: tuple[str, ...], max_objects: int, steps: int,
            **world_options) -> Callable[[], RecipePreset]:
    world = WorldConfig(canvas=48, max_objects=max_objects, **world_options)
    return lambda: RecipePreset(
        model=ClassifierConfig.tiny(num_classes(world, tasks), image_size=48), world=world,
        train=TrainConfig(steps=steps, batch_size=64, lr=2e-3, weight_decay=0.05,
                          warmup_steps=30, checkpoint_every=100),
        options={"tasks": tasks})


#: Supervised pre-training presets (single-object 48x48 scenes, a small ResNet).
PRESETS: dict[str, Callable[[], RecipePreset]] = {
    "tiny": _preset(("count", "colour", "size"), 3, 400),
    "tiny_shape": _preset(("shape",), 1, 400),
    # chapter 01's supervised pre-training for ShapeWorld shapes (issue 13): the same eight shape
    # names, but another image distribution -- textured backgrounds and only four of the eight
    # colours -- as ImageNet's classes overlap a downstream task's while its photos differ.  The
    # count/colour/size task of "tiny" shares no feature with shape and transferred negatively.
    "tiny_shape_shifted": _preset(("shape",), 1, 400, background="textured",
                                  colours=("red", "green", "blue", "yellow")),
}


def build_model(preset: RecipePreset) -> ImageClassifier:
    """A freshly initialised classifier of ``preset.model`` (seed torch first)."""
    return ImageClassifier(preset.model)


def model_from_config(model_config: dict) -> ImageClassifier:
    """The classifier of a card's / ``run.json``'s ``model_config`` dict (weights not loaded)."""
    return ImageClassifier(ClassifierConfig.from_dict(model_config))


def task_labels(batch, tasks: Sequence[str], world: WorldConfig) -> torch.Tensor:
    """(B, T) int64 class ids of a :class:`~vlm_course.world.SceneBatch` for ``tasks`` (``count``
    shifted to start at 0)."""
    cols = [batch.labels[t] - (world.min_objects if t == "count" else 0) for t in tasks]
    return torch.stack(cols, dim=1)


class LabelledBatches:
    """``source(step, rank, world_size) -> (images (b, 3, H, W) float32, labels (b, T) int64)``
    with ``b = batch_size / world_size`` and one label column per task (module docstring).

    Raises:
        TypeError: ``world`` is not a ShapeWorld / WorldConfig.
        ValueError: bad ``tasks`` (see :func:`num_classes`), ``batch_size < 1``; when called, a
            bad shard (see ``scene_indices``).
    """

    def __init__(self, world: ShapeWorld | WorldConfig, batch_size: int,
                 tasks: Sequence[str] = ("shape",), *, split: str = "train") -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError(f"world must be a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        num_classes(world.cfg, tasks)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        world.batch(split, [], masks=False)               # checks the split now
        self.world, self.batch_size, self.tasks, self.split = world, batch_size, tuple(tasks), split

    def __call__(self, step: int, rank: int = 0, world_size: int = 1):
        batch = self.world.batch(self.split, scene_indices(step, self.batch_size, rank,
                                                           world_size), masks=False)
        return batch.images, task_labels(batch, self.tasks, self.world.cfg)


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            tasks: Sequence[str] = ("shape",), split: str = "train") -> LabelledBatches:
    """The batch source of a run: ``config.batch_size`` labelled scenes per step (``model``
    unused)."""
    return LabelledBatches(world, config.batch_size, tasks, split=split)


def step(model, batch) -> tuple[torch.Tensor, dict]:
    """``(model, (images, labels (b, T))) -> (sum of per-task cross-entropies, {"acc_<t>": ...})``
    where ``t`` is the task's column index."""
    images, labels = batch
    logits = unwrap(model).split_logits(model(images).float())
    loss = sum(F.cross_entropy(z, labels[:, t]) for t, z in enumerate(logits))
    metrics = {f"acc_{t}": float((z.argmax(1) == labels[:, t]).float().mean())
               for t, z in enumerate(logits)}
    return loss, metrics


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, tasks: Sequence[str] | None = None,
             n: int = 1000, split: str = "test") -> dict:
    """Accuracy of every task on scenes ``0 .. n-1`` of ``split``: ``{"<task>": float, "n": n}``.

    ``tasks`` defaults to the preset whose class counts match the model's head (the first preset
    of :data:`PRESETS` that does).  Raises ValueError when ``n`` is not an int >= 1 or the tasks
    do not match the head.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    world = ShapeWorld(world) if isinstance(world, WorldConfig) else world
    net = unwrap(model)
    if tasks is None:
        tasks = next((p().options["tasks"] for p in PRESETS.values()
                      if num_classes(world.cfg, p().options["tasks"])
                      == net.config.num_classes), None)
    if tasks is None or num_classes(world.cfg, tasks) != net.config.num_classes:
        raise ValueError(f"tasks must match the head's classes {net.config.num_classes}, got "
                         f"{tasks!r}")
    was_training = net.training
    net.eval()
    batch = world.batch(split, range(n), masks=False)
    logits = net.split_logits(torch.cat([net(batch.images[i:i + 250])
                                         for i in range(0, n, 250)]))
    net.train(was_training)
    labels = task_labels(batch, tasks, world.cfg)
    out: dict = {t: float((z.argmax(1) == labels[:, i]).float().mean())
                 for i, (t, z) in enumerate(zip(tasks, logits, strict=True))}
    out["n"] = n
    return out
