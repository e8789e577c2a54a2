"""The SimCLR recipe: two augmented views of ShapeWorld images and the NT-Xent step.

Chapter 04 (image contrastive learning); Chen et al. 2020.  Plugs SimCLR into the one training
loop (:func:`vlm_course.training.loop.train`):

* :class:`SimCLRBatches` — the batch of step ``s`` is two random views
  (:func:`vlm_course.objectives.augment.two_views`) of ShapeWorld train scenes
  ``s*B .. s*B + B - 1`` (rank ``r`` of ``R`` takes its contiguous slice); the augmentation
  generator is seeded by ``(seed, step, rank, world_size)``, so a batch is a pure function of its
  arguments and a resumed run is exact;
* :func:`make_step` / :func:`step` — NT-Xent over the ``2b`` views of the local batch (each rank
  contrasts its own views; features are not gathered across ranks);
* :data:`PRESETS` ``tiny`` — chapter 04's 32x32 one-object world and a ViT image tower;
  ``tiny48`` — CLIP tiny's 48x48 world and image tower (300 steps, probes near chance);
  ``tiny48_single`` — chapter 01's: the same tower on single-object scenes, gentler crops and
  full-strength colour distortion (``simclr_tiny48_shapeworld`` since issue 13);
* :func:`evaluate` — nearest-class-mean probes of colour and shape on frozen features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from vlm_course.models.vit import VisionTransformer, ViTConfig
from vlm_course.objectives.augment import AugmentConfig, two_views
from vlm_course.objectives.contrastive import nt_xent_loss
from vlm_course.recipes import RecipePreset
from vlm_course.training.data import scene_indices
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig

__all__ = ["PRESETS", "SimCLRBatches", "batches", "build_model", "evaluate", "make_step",
           "model_from_config", "step"]

#: NT-Xent temperature of the presets (SimCLR's small-batch setting).
TEMPERATURE = 0.2

#: Chapter 04's SimCLR: 32x32 single-object scenes, a 2-layer ViT, plain AdamW at a constant rate.
PRESETS: dict[str, Callable[[], RecipePreset]] = {
    "tiny": lambda: RecipePreset(
        model=ViTConfig(image_size=32, patch_size=8, width=64, layers=2, heads=4, output_dim=64),
        world=WorldConfig(canvas=32, max_objects=1),
        train=TrainConfig(steps=60, batch_size=64, lr=2e-3, weight_decay=0.01, warmup_steps=0,
                          min_lr_ratio=1.0, grad_clip=None, checkpoint_every=20),
        options={"augment": AugmentConfig()}),
    # chapter 01's self-supervised paradigm: CLIP tiny's image tower and world (48x48, 1-2
    # objects), so SimCLR and CLIP differ only in their objective
    "tiny48": lambda: RecipePreset(
        model=ViTConfig(image_size=48, patch_size=8, width=64, layers=2, heads=4, output_dim=64),
        world=WorldConfig(canvas=48, max_objects=2),
        train=TrainConfig(steps=300, batch_size=64, lr=2e-3, weight_decay=0.05,
                          warmup_steps=20, checkpoint_every=50),
        options={"augment": AugmentConfig()}),
    # chapter 01's re-shipped self-supervised paradigm (issue 13): "tiny48" probed near chance on
    # shape because its crops (35% of a 48x48 scene of 1-2 small objects) often cut the objects
    # apart or kept different ones in the two views.  Single-object scenes, crops that keep most
    # of the scene, and colour distortion at SimCLR's full strength (any hue) leave shape as the
    # cue that tells two scenes apart; 800 steps fit the 12-minute single-thread budget.
    "tiny48_single": lambda: RecipePreset(
        model=ViTConfig(image_size=48, patch_size=8, width=64, layers=2, heads=4, output_dim=64),
        world=WorldConfig(canvas=48, max_objects=1),
        train=TrainConfig(steps=800, batch_size=64, lr=2e-3, weight_decay=0.05,
                          warmup_steps=40, checkpoint_every=100),
        options={"augment": AugmentConfig(crop_scale=(0.55, 1.0), brightness=0.8,
                                          contrast=0.8, saturation=0.8, hue=0.5)}),
}


def build_model(preset: RecipePreset) -> VisionTransformer:
    """A freshly initialised image encoder of ``preset.model`` (seed torch first)."""
    return VisionTransformer(preset.model)


def model_from_config(model_config: dict) -> VisionTransformer:
    """The encoder of a ``run.json`` / card ``model_config`` dict (weights not loaded)."""
    return VisionTransformer(ViTConfig(**model_config))


def _generator_seed(seed: int, step: int, rank: int, world_size: int) -> int:
    return (seed * 0x9E3779B1 + step * 0x85EBCA77 + rank * 0xC2B2AE3D + world_size) % 2**63


class SimCLRBatches:
    """``source(step, rank, world_size) -> (view1, view2)``, each ``(b, 3, H, W)`` float32 with
    ``b = batch_size / world_size`` (module docstring).  Deterministic in its arguments.

    Raises:
        TypeError: ``world`` is not a ShapeWorld / WorldConfig, ``augment`` not an AugmentConfig.
        ValueError: ``batch_size < 2``; when called, a bad shard (see ``scene_indices``).
    """

    def __init__(self, world: ShapeWorld | WorldConfig, batch_size: int, *,
                 augment: AugmentConfig | None = None, seed: int = 0,
                 split: str = "train") -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError("world must be a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        augment = AugmentConfig() if augment is None else augment
        if not isinstance(augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig, got {type(augment).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError("batch_size must be an int >= 2 (contrastive needs negatives), "
                             f"got {batch_size!r}")
        world.batch(split, [], masks=False)               # checks the split now
        self.world, self.batch_size, self.augment = world, batch_size, augment
        self.seed, self.split = seed, split

    def __call__(self, step: int, rank: int = 0, world_size: int = 1):
        images = self.world.images(self.split, scene_indices(step, self.batch_size, rank,
                                                             world_size))
        gen = torch.Generator().manual_seed(_generator_seed(self.seed, step, rank, world_size))
        return two_views(images, gen, self.augment)


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            augment: AugmentConfig | None = None, split: str = "train") -> SimCLRBatches:
    """The batch source of a run: ``config.batch_size`` scenes per step, views seeded by
    ``config.seed`` (``model`` is unused: views need no tokenizer)."""
    return SimCLRBatches(world, config.batch_size, augment=augment, seed=config.seed, split=split)


def make_step(temperature: float = TEMPERATURE) -> Callable:
    """A step function ``(model, (view1, view2)) -> (NT-Xent loss, {})`` at ``temperature``.

    Both views go through the encoder in one forward pass (one batch of ``2b`` images).

    Raises:
        ValueError: ``temperature`` is not a finite number > 0.
    """
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not 0 < temperature < float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")

    def simclr_step(model, batch):
        view1, view2 = batch
        z1, z2 = model(torch.cat([view1, view2])).float().chunk(2)
        return nt_xent_loss(z1, z2, temperature=temperature), {}

    return simclr_step


#: The step function of the presets (temperature :data:`TEMPERATURE`).
step = make_step()


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, n: int = 600, split: str = "test") -> dict:
    """Nearest-class-mean probes on frozen, L2-normalised features of scenes ``0 .. n-1``: class
    means from the first two thirds, accuracy on the last third, for the primary object's colour
    and shape.  Returns ``{"probe_colour", "probe_shape", "n_test"}``.

    Raises:
        ValueError: ``n`` is not an int >= 6.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 6:
        raise ValueError(f"n must be an int >= 6, got {n!r}")
    world = ShapeWorld(world) if isinstance(world, WorldConfig) else world
    encoder = unwrap(model)
    was_training = encoder.training
    encoder.eval()
    batch = world.batch(split, range(n), masks=False)
    feats = F.normalize(encoder(batch.images).float(), dim=1)
    encoder.train(was_training)
    cut = 2 * n // 3
    out = {"n_test": n - cut}
    for kind in ("colour", "shape"):
        labels = batch.labels[kind]
        classes = labels[:cut].unique()
        means = torch.stack([feats[:cut][labels[:cut] == c].mean(0) for c in classes])
        pred = classes[(feats[cut:] @ F.normalize(means, dim=1).T).argmax(1)]
        out[f"probe_{kind}"] = float((pred == labels[cut:]).float().mean())
    return out

