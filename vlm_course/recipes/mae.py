"""The MAE recipe: ShapeWorld images, random patch masks, MAE's reconstruction loss (chapter 05).

He et al. 2022.  Plugs :class:`~vlm_course.models.mae.MaskedAutoencoder` into the one training
loop (:func:`vlm_course.training.loop.train`):

* :class:`MAEBatches` — the batch of step ``s`` is ShapeWorld train scenes ``s*B .. s*B + B - 1``
  (rank ``r`` of ``R`` takes its contiguous slice, :func:`~vlm_course.training.data.scene_indices`)
  and the masking noise ``(b, N)`` drawn from a generator seeded by ``(seed, step, rank,
  world_size)``: a batch is a pure function of its arguments, so a resumed run is exact;
* :func:`step` — ``model(images, noise=noise).loss``, MAE's pixel MSE on the removed patches;
* :data:`PRESETS` ``tiny`` — 48x48 scenes of 1-2 objects (the world of ``clip_tiny_shapeworld``),
  ``MAEConfig.tiny()`` at mask ratio 0.75;
* :func:`evaluate` — the numbers on the card: the loss on removed patches of held-out test scenes
  against two mean-patch baselines at several mask ratios, and linear probes (shape, colour) of
  the frozen features against the same network at initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vlm_course.evaluation.probe import linear_probe
from vlm_course.models.mae import MAEConfig, MaskedAutoencoder
from vlm_course.recipes import RecipePreset
from vlm_course.training.data import scene_indices
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig

__all__ = ["PRESETS", "MAEBatches", "batches", "build_model", "evaluate", "mask_baselines",
           "model_from_config", "reconstruction_targets", "step"]

def _tiny(norm_pix_loss: bool) -> RecipePreset:
    return RecipePreset(
        model=MAEConfig.tiny(norm_pix_loss=norm_pix_loss),
        world=WorldConfig(canvas=48, max_objects=2),
        train=TrainConfig(steps=1000, batch_size=64, lr=3e-3, weight_decay=0.05,
                          warmup_steps=50, checkpoint_every=100))


#: Chapter 05's MAE: the 48-pixel world of the shipped CLIP, MAE's 75% masking, AdamW (0.9, 0.95),
#: 1000 steps of 64 scenes (``mae_tiny_shapeworld`` was trained with these numbers).
#: ``tiny``: pixel targets; ``tiny_normpix``: per-patch normalised targets (MAE's variant).
PRESETS: dict[str, Callable[[], RecipePreset]] = {
    "tiny": lambda: _tiny(False),
    "tiny_normpix": lambda: _tiny(True),
}


def build_model(preset: RecipePreset) -> MaskedAutoencoder:
    """A freshly initialised MAE of ``preset.model`` (seed torch first)."""
    return MaskedAutoencoder(preset.model)


def model_from_config(model_config: dict) -> MaskedAutoencoder:
    """The MAE of a ``run.json`` / card ``model_config`` dict (weights not loaded)."""
    return MaskedAutoencoder(MAEConfig.from_dict(model_config))


def _generator_seed(seed: int, step: int, rank: int, world_size: int) -> int:
    return (seed * 0x9E3779B1 + step * 0x85EBCA77 + rank * 0xC2B2AE3D + world_size + 5) % 2**63


class MAEBatches:
    """``source(step, rank, world_size) -> {"images": (b, 3, H, W), "noise": (b, N)}`` with
    ``b = batch_size / world_size`` (module docstring).  Deterministic in its arguments.

    Raises:
        TypeError: ``world`` is not a ShapeWorld / WorldConfig.
        ValueError: ``batch_size < 1``, ``num_patches < 1``; when called, a bad shard.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, batch_size: int, num_patches: int, *,
                 seed: int = 0, split: str = "train") -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError("world must be a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        for name, value in (("batch_size", batch_size), ("num_patches", num_patches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        world.batch(split, [], masks=False)               # checks the split now
        self.world, self.batch_size, self.num_patches = world, batch_size, num_patches
        self.seed, self.split = seed, split

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        idx = scene_indices(step, self.batch_size, rank, world_size)
        gen = torch.Generator().manual_seed(_generator_seed(self.seed, step, rank, world_size))
        return {"images": self.world.images(self.split, idx),
                "noise": torch.rand(len(idx), self.num_patches, generator=gen)}


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            split: str = "train") -> MAEBatches:
    """The batch source of a run: ``config.batch_size`` scenes per step, masks seeded by
    ``config.seed``."""
    return MAEBatches(world, config.batch_size, unwrap(model).num_patches, seed=config.seed,
                      split=split)


def step(model, batch: dict):
    """``(model, batch) -> (loss, {})``: MAE's loss on the removed patches at the model's ratio."""
    return model(batch["images"], noise=batch["noise"]).loss, {}


def mask_baselines(patches: torch.Tensor, mask: torch.Tensor,
                   mean_patch: torch.Tensor) -> dict[str, float]:
    """Two predictors that know no more than the mask: the training set's mean patch
    (``mean_patch`` ``(K,)``) and, per image, the mean of its visible patches.

    patches: ``(B, N, K)``; mask: ``(B, N)`` 1 = removed.  Returns their per-patch MSE averaged
    over removed patches, as :func:`~vlm_course.objectives.generative.mae_loss` counts it.
    Raises ``ValueError`` on mismatched shapes or an image with no visible patch.
    """
    if patches.dim() != 3 or mask.shape != patches.shape[:2]:
        raise ValueError(f"patches must be (B, N, K) and mask (B, N), got {tuple(patches.shape)} "
                         f"and {tuple(mask.shape)}")
    visible = 1 - mask.to(patches.dtype)
    if (visible.sum(1) == 0).any():
        raise ValueError("mask removes every patch of some image: no visible mean exists")
    per_image = (patches * visible[..., None]).sum(1) / visible.sum(1)[:, None]  # (B, K)
    removed = mask.to(patches.dtype)

    def mse(pred: torch.Tensor) -> float:
        return float((((pred - patches) ** 2).mean(-1) * removed).sum() / removed.sum())

    return {"mean_patch": mse(mean_patch.expand_as(patches)),
            "visible_mean": mse(per_image[:, None].expand_as(patches))}


def reconstruction_targets(model: MaskedAutoencoder, images: torch.Tensor) -> torch.Tensor:
    """What the MAE is trained to output for each patch, ``(B, N, K)``: the pixels, or with
    ``norm_pix_loss`` each patch normalised by its own mean and variance (as ``mae_loss``)."""
    patches = model.patchify(images)
    if not model.config.norm_pix_loss:
        return patches
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
    return (patches - mean) / (var + 1e-6) ** 0.5


def _single_object(world: ShapeWorld, split: str, n: int, start: int = 0):
    """The first ``n`` single-object scenes of ``split`` from index ``start`` on."""
    images, labels, index = [], {"shape": [], "colour": []}, start
    while sum(len(x) for x in images) < n:
        b = world.batch(split, range(index, index + 512), masks=False)
        keep = b.labels["count"] == 1
        images.append(b.images[keep])
        for kind in labels:
            labels[kind].append(b.labels[kind][keep])
        index += 512
    return (torch.cat(images)[:n], {k: torch.cat(v)[:n] for k, v in labels.items()})


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, n: int = 1000,
             ratios: tuple[float, ...] = (0.5, 0.75, 0.9), probe_train: int = 2000,
             probe_test: int = 1000, seed: int = 0) -> dict:
    """The card's numbers (module docstring).

    Reconstruction: test scenes ``0 .. n-1``, masks from a generator seeded by ``seed``; for each
    ratio the MAE's loss on removed patches, the two :func:`mask_baselines` and the ratio of the
    loss to the better baseline, all against the model's own targets
    (:func:`reconstruction_targets`: pixels, or normalised patches with ``norm_pix_loss``).
    Probes: logistic regression (:func:`vlm_course.evaluation.probe.linear_probe`) on
    :meth:`MaskedAutoencoder.encode_image` features of single-object scenes (``probe_train``
    from train, ``probe_test`` from test), for the MAE and for the same architecture freshly
    initialised with ``seed``.
    Raises ``ValueError`` for ``n < 1``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    world = ShapeWorld(world) if isinstance(world, WorldConfig) else world
    mae = unwrap(model)
    was_training = mae.training
    mae.eval()
    device = next(mae.parameters()).device
    images = world.images("test", range(n)).to(device)
    targets = reconstruction_targets(mae, images)
    mean_patch = reconstruction_targets(mae, world.images("train", range(2048)).to(device))
    mean_patch = mean_patch.mean((0, 1))
    out: dict = {"n_test_scenes": n, "targets": "normalised per patch" if
                 mae.config.norm_pix_loss else "pixels"}
    for ratio in ratios:
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(n, mae.num_patches, generator=gen).to(device)
        result = mae(images, ratio, noise=noise)
        loss = float(result.loss)
        base = mask_baselines(targets, result.mask, mean_patch)
        out[f"ratio_{ratio}"] = {"mae_loss": loss, **base,
                                 "loss_over_best_baseline": loss / min(base.values())}
    torch.manual_seed(seed)
    fresh = MaskedAutoencoder(mae.config).to(device).eval()
    train_x, train_y = _single_object(world, "train", probe_train)
    test_x, test_y = _single_object(world, "test", probe_test)
    for name, net in (("mae", mae), ("random_init", fresh)):
        f_train = net.encode_image(train_x.to(device)).cpu()
        f_test = net.encode_image(test_x.to(device)).cpu()
        for kind in ("shape", "colour"):
            out[f"probe_{kind}_{name}"] = linear_probe(f_train, train_y[kind], f_test,
                                                       test_y[kind])
    out["protocol"] = (
        f"reconstruction: test scenes 0..{n - 1}, noise seed {seed}, the model's loss (MSE per "
        "patch against its targets, averaged over removed patches); baselines, against the "
        "same targets: the mean target patch of train scenes 0..2047, and each image's mean "
        "visible target patch. Probes: vlm_course.evaluation.probe.linear_probe on the "
        f"mean encoded patch token (nothing masked) of the first {probe_train} single-object train "
        f"scenes, scored on the first {probe_test} single-object test scenes; random_init = the "
        f"same architecture freshly initialised (torch seed {seed}).")
    mae.train(was_training)
    return out
