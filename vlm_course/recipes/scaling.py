"""The protocol of chapter 12's scaling sweep: one tiny CLIP (or SigLIP) per point, trained and
measured the same way.

Chapter 12 (benchmarks; survey § 8): the survey's trends — zero-shot accuracy grows with the
pre-training data, the model and (for contrastive learning) the batch — reproduced in miniature.
A :class:`ScalingPoint` fixes the four axes of the sweep: ``objective`` (``"clip"`` or
``"siglip"``), ``width`` (both towers and the joint space), ``scenes`` (distinct training pairs,
``None`` = a fresh pair every time) and ``batch_size``, at a budget of ``samples`` pairs seen
(``steps = samples / batch_size``, so points on the batch axis cost the same compute).
:func:`run_point` trains it with the one training loop and the CLIP / SigLIP recipe's batches and
step, then measures:

* zero-shot colour+shape accuracy (64 classes) on single-object *test* scenes, all of them and
  the held-out compositions (never seen in training), plus colour and shape alone
  (:func:`~vlm_course.evaluation.zeroshot.evaluate_shapeworld`);
* retrieval R@1 image→text and text→image on test scenes with all their captions
  (:func:`~vlm_course.evaluation.retrieval.evaluate_retrieval`).

``bench/scaling_sweep.py`` runs the grid and ships the rows; ``notebooks/12_benchmarks.md``
re-runs a few points live and compares.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

__all__ = ["OBJECTIVES", "ScalingPoint", "build", "run_point", "world_config"]

#: objective -> recipe module name.
OBJECTIVES = {"clip": "clip", "siglip": "siglip"}


def world_config():
    """The sweep's world: 32-pixel canvas, one or two objects per scene, default held-out pairs."""
    from vlm_course.world import WorldConfig

    return WorldConfig(canvas=32, max_objects=2)


@dataclass(frozen=True)
class ScalingPoint:
    """One point of the sweep (see the module docstring); ``steps`` is derived.

    Raises:
        ValueError: an unknown ``objective``; ``width`` not a multiple of 16 in ``[16, 256]``;
            ``scenes`` not ``None`` or an int >= 2; ``batch_size`` < 2; ``samples`` not a
            positive multiple of ``batch_size``; ``seed`` < 0; ``lr`` <= 0.
    """

    objective: str = "clip"
    width: int = 32
    scenes: int | None = None
    batch_size: int = 64
    samples: int = 12800
    seed: int = 0
    lr: float = 2e-3

    def __post_init__(self) -> None:
        def is_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, "
                             f"got {self.objective!r}")
        if not is_int(self.width) or self.width % 16 or not 16 <= self.width <= 256:
            raise ValueError(f"width must be a multiple of 16 in [16, 256], got {self.width!r}")
        if self.scenes is not None and (not is_int(self.scenes) or self.scenes < 2):
            raise ValueError(f"scenes must be None or an int >= 2, got {self.scenes!r}")
        if not is_int(self.batch_size) or self.batch_size < 2:
            raise ValueError(f"batch_size must be an int >= 2, got {self.batch_size!r}")
        if not is_int(self.samples) or self.samples < 1 or self.samples % self.batch_size:
            raise ValueError(f"samples must be a positive multiple of batch_size="
                             f"{self.batch_size}, got {self.samples!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or self.lr <= 0:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")

    @property
    def steps(self) -> int:
        return self.samples // self.batch_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build(point: ScalingPoint):
    """``(recipe module, model, TrainConfig)`` of ``point``: a ViT tower (patch 8, 16 patches,
    2 layers) and a text tower (2 layers, context 24), both of width ``point.width`` with
    ``width / 16`` heads, a ``width``-d joint space; AdamW, 10% warm-up, cosine decay, weight
    decay 0.1.  The model is initialised from ``point.seed``."""
    import torch

    from vlm_course.models.clip import CLIPConfig
    from vlm_course.models.siglip import SigLIPConfig
    from vlm_course.models.text_encoder import TextConfig
    from vlm_course.models.vit import ViTConfig
    from vlm_course.recipes import get
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.training.loop import TrainConfig

    recipe = get(OBJECTIVES[point.objective])
    w, heads = point.width, point.width // 16
    config_type = SigLIPConfig if point.objective == "siglip" else CLIPConfig
    config = config_type.build(w, ViTConfig(image_size=32, patch_size=8, width=w, layers=2,
                                            heads=heads),
                               TextConfig(width=w, layers=2, heads=heads, context_length=24),
                               shapeworld_vocab(world_config()))
    train = TrainConfig(steps=point.steps, batch_size=point.batch_size, lr=point.lr,
                        weight_decay=0.1, warmup_steps=max(1, point.steps // 10),
                        seed=point.seed, checkpoint_every=point.steps)
    torch.manual_seed(point.seed)
    model = recipe.model_from_config(config.to_dict())
    return recipe, model, train


def run_point(point: ScalingPoint, *, eval_scenes: int = 1000, retrieval_scenes: int = 500
              ) -> dict:
    """Train ``point`` (no checkpoint written) and measure it; returns a JSON-able row:
    the point's fields, ``steps``, ``parameters``, ``final_loss`` (mean of the last 10 steps),
    ``zs_colour_shape`` / ``zs_heldout`` (colour+shape accuracy on all / held-out test scenes),
    ``zs_colour``, ``zs_shape``, ``r1_i2t``, ``r1_t2i`` and ``cpu_seconds`` / ``seconds``
    (training + evaluation, this process).

    Raises:
        TypeError: ``point`` is not a :class:`ScalingPoint`.
        ValueError: ``eval_scenes`` or ``retrieval_scenes`` is not an int >= 1.
    """
    import torch

    from vlm_course.evaluation.retrieval import evaluate_retrieval
    from vlm_course.evaluation.zeroshot import evaluate_shapeworld
    from vlm_course.training.loop import train
    from vlm_course.world import ShapeWorld

    if not isinstance(point, ScalingPoint):
        raise TypeError(f"point must be a ScalingPoint, got {type(point).__name__}")
    for name, value in (("eval_scenes", eval_scenes), ("retrieval_scenes", retrieval_scenes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    start, start_cpu = time.perf_counter(), time.process_time()
    recipe, model, config = build(point)
    world = world_config()
    source = recipe.batches(world, model, config, scenes=point.scenes)
    history = train(model, source, recipe.step, config, after_step=recipe.after_step,
                    desc=f"{point.objective}, width {point.width}, "
                         f"{point.scenes or 'fresh'} pairs, batch {point.batch_size}")
    model.eval()
    with torch.no_grad():
        zs = evaluate_shapeworld(model, world, n=eval_scenes, split="test")
        batch = ShapeWorld(world).batch("test", range(retrieval_scenes), masks=False)
        r = evaluate_retrieval(model, batch.images, batch.captions, ks=(1,))
    tail = [h["loss"] for h in history[-10:]]
    return {**point.to_dict(), "steps": point.steps,
            "parameters": sum(p.numel() for p in model.parameters()),
            "final_loss": sum(tail) / len(tail),
            "zs_colour_shape": zs["all_colour+shape"], "zs_heldout": zs["heldout_colour+shape"],
            "zs_colour": zs["all_colour"], "zs_shape": zs["all_shape"],
            "r1_i2t": r["i2t_R@1"], "r1_t2i": r["t2i_R@1"],
            "cpu_seconds": time.process_time() - start_cpu,
            "seconds": time.perf_counter() - start}
