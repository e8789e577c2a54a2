"""The CLIP recipe: ShapeWorld image-caption pairs, the symmetric InfoNCE step, the card's numbers.

Chapter 04 (pre-training a tiny CLIP); Radford et al. 2021.  Plugs CLIP into the one training
loop (:func:`vlm_course.training.loop.train`):

* :class:`ClipBatches` — the batch of step ``s`` is the ``(images, tokens)`` of ShapeWorld scenes
  ``s*B .. s*B + B - 1`` of the train split (rank ``r`` of ``R`` takes its contiguous slice), one
  caption per scene from :meth:`vlm_course.world.ShapeWorld.pairs` (keyed by the run's seed);
  with ``scenes=N`` the run instead cycles through a fixed pool of ``N`` distinct pairs (chapter
  12's data-size axis);
* :func:`step` — the contrastive loss over the global batch
  (:func:`~vlm_course.training.distributed.distributed_clip_loss`, which is ``clip_loss`` in one
  process); :func:`after_step` clamps the log-space ``logit_scale`` to ``<= log(100)``;
* :data:`PRESETS` ``tiny`` / ``tiny_resnet`` / ``small`` — model, world and training recipe;
* :func:`evaluate` — zero-shot accuracy and retrieval for a shipped checkpoint's card,
  :func:`in_batch_metrics` — the quick in-batch loss / top-1 of a run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch

from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.objectives.contrastive import CLIP_MAX_LOGIT_SCALE, clip_loss
from vlm_course.recipes import RecipePreset
from vlm_course.training.data import scene_indices
from vlm_course.training.distributed import distributed_clip_loss
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig

__all__ = ["POOL_RANGE", "PRESETS", "ClipBatches", "after_step", "batches", "build_model",
           "clamp_logit_scale", "evaluate", "in_batch_metrics", "migrate_card", "model_from_config",
           "shapeworld_vocab", "step"]


def shapeworld_vocab(world: WorldConfig) -> tuple[str, ...]:
    """The tokenizer words for a ShapeWorld: every caption word of ``world``, the prompt words and
    the punctuation (:meth:`vlm_course.text.Tokenizer.from_world`), special tokens excluded."""
    from vlm_course.text import Tokenizer

    return tuple(Tokenizer.from_world(world).to_dict()["words"])


def _preset(arch: Callable[..., CLIPConfig], world: WorldConfig, train: TrainConfig):
    return lambda: RecipePreset(model=arch(shapeworld_vocab(world)), world=world, train=train)


#: ShapeWorld CLIP presets: the canvas follows the model's image size.
PRESETS: dict[str, Callable[[], RecipePreset]] = {
    "tiny": _preset(CLIPConfig.tiny, WorldConfig(canvas=48, max_objects=2),
                    TrainConfig(steps=1500, batch_size=128, lr=2e-3, weight_decay=0.1,
                                warmup_steps=100, checkpoint_every=50)),
    "tiny_resnet": _preset(CLIPConfig.tiny_resnet, WorldConfig(canvas=64, max_objects=2),
                           TrainConfig(steps=1500, batch_size=128, lr=1e-3, warmup_steps=100,
                                       checkpoint_every=100)),
    "small": _preset(CLIPConfig.small, WorldConfig(canvas=64),
                     TrainConfig(steps=20000, batch_size=1024, lr=1e-3, warmup_steps=1000,
                                 checkpoint_every=1000)),
}


def build_model(preset: RecipePreset) -> CLIP:
    """A freshly initialised CLIP of ``preset.model`` (seed torch first for a fixed init)."""
    return CLIP(preset.model)


def model_from_config(model_config: dict) -> CLIP:
    """The CLIP of a card's / ``run.json``'s ``model_config`` dict (weights not loaded)."""
    return CLIP(CLIPConfig.from_dict(model_config))


#: Size of the index range a pool of ``scenes`` distinct training scenes is drawn from.
POOL_RANGE = 1 << 20


class ClipBatches:
    """``source(step, rank, world_size) -> (images (b,3,H,W) float32, tokens dict)`` with
    ``b = batch_size / world_size`` (see the module docstring).  Deterministic in its arguments.

    ``scenes``: ``None`` (default) gives every step fresh scenes ``s*B .. s*B + B - 1``; an int
    ``N`` limits the run to ``N`` distinct image-caption pairs (a finite dataset, chapter 12):
    the scenes at positions ``0 .. N-1`` of a seeded random permutation of the indices
    ``0 .. POOL_RANGE - 1`` (so a smaller pool is a subset of a larger one), visited in order and
    cycled; position ``p`` of the stream is pool scene ``p mod N``, and each keeps one caption.

    Raises:
        TypeError: ``world`` is not a ShapeWorld / WorldConfig, or ``tokenize`` not callable.
        ValueError: ``batch_size < 2`` (contrastive needs negatives), ``scenes`` not ``None`` or
            an int in ``[2, POOL_RANGE]``; when called, a ``batch_size`` that does not split over
            ``world_size`` or a bad ``rank``.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, tokenize: Callable, batch_size: int, *,
                 seed: int = 0, split: str = "train", scenes: int | None = None) -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError("world must be a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        if not callable(tokenize):
            raise TypeError(f"tokenize must be callable, got {type(tokenize).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError("batch_size must be an int >= 2 (contrastive needs negatives), "
                             f"got {batch_size!r}")
        if scenes is not None and (isinstance(scenes, bool) or not isinstance(scenes, int)
                                   or not 2 <= scenes <= POOL_RANGE):
            raise ValueError(f"scenes must be None or an int in [2, {POOL_RANGE}], got {scenes!r}")
        world.pairs(split, [], seed=seed)                 # checks split and seed now
        self.world, self.tokenize, self.batch_size = world, tokenize, batch_size
        self.seed, self.split, self.scenes = seed, split, scenes
        self.pool = None
        if scenes is not None:
            import numpy as np

            order = np.random.default_rng(seed).permutation(POOL_RANGE)
            self.pool = [int(i) for i in order[:scenes]]

    def indices(self, step: int, rank: int = 0, world_size: int = 1) -> Sequence[int]:
        """The scene indices of ``rank``'s shard of the batch of ``step`` (a ``range`` without
        a pool, a list with one)."""
        positions = scene_indices(step, self.batch_size, rank, world_size)
        if self.pool is None:
            return positions
        return [self.pool[p % len(self.pool)] for p in positions]

    def at(self, indices: Sequence[int]):
        """``(images, tokens)`` of the given scenes (the training captions)."""
        images, captions = self.world.pairs(self.split, indices, seed=self.seed)
        return images, dict(self.tokenize(captions))

    def __call__(self, step: int, rank: int = 0, world_size: int = 1):
        return self.at(self.indices(step, rank, world_size))


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            split: str = "train", scenes: int | None = None) -> ClipBatches:
    """The batch source of a run: ``config.batch_size`` scenes per step, captions keyed by
    ``config.seed``, tokenized by ``model.tokenize``; ``scenes`` limits the run to a pool of that
    many distinct pairs (see :class:`ClipBatches`)."""
    return ClipBatches(world, unwrap(model).tokenize, config.batch_size, seed=config.seed,
                       split=split, scenes=scenes)


def step(model, batch) -> tuple[torch.Tensor, dict]:
    """CLIP's symmetric InfoNCE on one batch ``(images, tokens)`` (over all ranks' features
    when distributed); metrics: ``logit_scale`` (``exp`` of the log-space scale, before the
    update)."""
    images, tokens = batch
    image_emb, text_emb, logit_scale = model(images, tokens)
    loss = distributed_clip_loss(image_emb.float(), text_emb.float(), logit_scale.float())
    return loss, {"logit_scale": float(logit_scale.detach().exp())}


def clamp_logit_scale(model: torch.nn.Module, max_value: float = CLIP_MAX_LOGIT_SCALE) -> None:
    """Clamp the log-space ``logit_scale`` parameter in place to ``<= max_value`` (CLIP's cap,
    ``log 100``)."""
    with torch.no_grad():
        unwrap(model).logit_scale.clamp_(max=max_value)


def after_step(model) -> None:
    """After every finite step: clamp ``logit_scale`` (CLIP caps the temperature at 1/100)."""
    clamp_logit_scale(model)


@torch.no_grad()
def in_batch_metrics(model, world: ShapeWorld | WorldConfig, *, split: str = "val", n: int = 256,
                     batch_size: int = 128, seed: int = 0) -> dict:
    """Mean contrastive loss and in-batch image→text top-1 on ``n`` fixed scenes of ``split``.

    Scenes ``0 .. n-1`` with their training-style caption (:meth:`ShapeWorld.pairs`), in batches
    of ``batch_size`` (which sets the number of negatives: compare runs at the same value).
    Returns ``{"loss", "i2t_top1"}``.

    Raises:
        ValueError: ``n`` or ``batch_size`` is not an int >= 1 (or ``batch_size`` < 2).
    """
    for name, value, low in (("n", n, 1), ("batch_size", batch_size, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    bare = unwrap(model)
    source = ClipBatches(world, bare.tokenize, batch_size, seed=seed, split=split)
    was_training = bare.training
    bare.eval()
    losses, hits = 0.0, 0
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        images, tokens = source.at(range(start, start + size))
        image_emb, text_emb, logit_scale = bare(images, tokens)
        losses += float(clip_loss(image_emb.float(), text_emb.float(), logit_scale.float())) * size
        sim = image_emb.float() @ text_emb.float().T
        hits += int((sim.argmax(dim=1) == torch.arange(size, device=sim.device)).sum())
    bare.train(was_training)
    return {"loss": losses / n, "i2t_top1": hits / n}


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, eval_scenes: int = 2000,
             retrieval_scenes: int = 1000) -> dict:
    """The card's numbers: zero-shot accuracy on single-object *test* scenes
    ``0 .. eval_scenes - 1`` (all / seen / held-out compositions) and retrieval R@1/R@5 on test
    scenes ``0 .. retrieval_scenes - 1`` with all their captions.  Returns
    ``{"zeroshot", "retrieval", "protocol"}``.

    Raises:
        ValueError: a count that is not an int >= 1.
    """
    from vlm_course.evaluation.retrieval import evaluate_retrieval
    from vlm_course.evaluation.zeroshot import evaluate_shapeworld

    for name, value in (("eval_scenes", eval_scenes), ("retrieval_scenes", retrieval_scenes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    world_cfg = world.cfg if isinstance(world, ShapeWorld) else world
    model = unwrap(model)
    zeroshot = evaluate_shapeworld(model, world_cfg, n=eval_scenes, split="test", start=0)
    batch = ShapeWorld(world_cfg).batch("test", range(retrieval_scenes), masks=False)
    retrieval = evaluate_retrieval(model, batch.images, batch.captions, ks=(1, 5))
    return {"zeroshot": zeroshot, "retrieval": retrieval,
            "protocol": ("zero-shot: vlm_course.evaluation.zeroshot.evaluate_shapeworld on "
                         f"single-object test scenes 0..{eval_scenes - 1} of the world above "
                         "(prompt ensembles of shapeworld_prompts; heldout_* = scenes whose "
                         "colour-shape pair never occurs in training); retrieval: "
                         "vlm_course.evaluation.retrieval.evaluate_retrieval on test scenes "
                         f"0..{retrieval_scenes - 1} with all their captions.")}


def migrate_card(card: dict) -> dict:
    """A card written before ``CLIPConfig`` held its vocabulary, in today's format.

    The old ``model_config`` stored ``shapes`` / ``colours`` and rebuilt the tokenizer from them;
    the new one stores ``vocab``, the card's own tokenizer words (so the token ids, and hence the
    weights, are unchanged).  Adds ``"recipe": "clip"`` and a ``"migrated"`` note.  A card already
    in the new format is returned unchanged (as a copy).

    Raises:
        ValueError: an old card without its ``tokenizer`` words.
    """
    card = copy.deepcopy(card)
    model_config = card["model_config"]
    if "vocab" in model_config:
        return card
    if "words" not in card.get("tokenizer", {}):
        raise ValueError("card lacks tokenizer.words, the vocabulary its weights were trained "
                         "with; it cannot be migrated")
    model_config.pop("shapes", None)
    model_config.pop("colours", None)
    model_config["vocab"] = list(card["tokenizer"]["words"])
    card["model_config"] = dict(sorted(model_config.items()))
    card = {"name": card.get("name"), "recipe": "clip", **card}
    card["migrated"] = ("model_config moved to the vocab format of issue 8 (shapes/colours -> "
                        "vocab = the card's tokenizer words); weights and numbers unchanged")
    return card
