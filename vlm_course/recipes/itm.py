"""The ITM recipe: a fusion encoder on the shipped CLIP's towers, trained on hard negatives.

Chapter 06 (alignment objectives); ALBEF (Li et al. 2021) and BLIP (Li et al. 2022), with ARO's
word-order swaps (Yuksekgonul et al. 2023) added to the candidate captions.  Plugs image-text
matching into the one training loop (:func:`vlm_course.training.loop.train`):

* :class:`ITMBatches` — the batch of step ``s`` is ShapeWorld train scenes ``s*B .. s*B + B - 1``
  (rank ``r`` of ``R`` takes its slice) with one caption each, the candidate pool of captions
  (those B captions, then word-swapped copies of two captions of each scene,
  :func:`vlm_course.world.perturb.swap_words`) and the truth of every candidate for every image
  (:func:`vlm_course.world.grounding.caption_truth`);
* :func:`step` — for each image one false candidate caption and for each of its B captions one image
  it is false of, drawn by :func:`~vlm_course.objectives.alignment.sample_hard_negatives` from the
  towers' contrastive similarity (``negatives="hard"``) or uniformly (``"random"``); the ITM loss
  over the B positives and up to 2B negatives;
* :data:`PRESETS` ``tiny`` (hard negatives after :data:`RANDOM_STEPS` steps of random ones) and
  ``tiny_random`` (random negatives throughout): the same model, data and schedule; both start from
  ``clip_tiny_shapeworld`` with its towers frozen and train on its world with two objects in every
  scene.  The warm-up is needed: a fresh fusion encoder shown only hard negatives (most of them
  its own caption with two words swapped) cannot tell a match from anything and settles on
  "no match" for every pair (loss ~0.60, accuracy ~2/3 for 200 steps in the course's run); after
  a few hundred random negatives it can, and the hard ones then teach the fine distinctions.  The
  first ``RANDOM_STEPS`` steps of the two presets are the same computation (same batches, same
  draws);
* :func:`evaluate` — Winoground in miniature (:mod:`vlm_course.evaluation.winoground`) for the card.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from vlm_course.models.clip import CLIPConfig
from vlm_course.models.itm import ITMConfig, ITMModel
from vlm_course.objectives.alignment import itm_loss, sample_hard_negatives
from vlm_course.recipes import RecipePreset
from vlm_course.training.data import scene_indices
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.grounding import caption_truth
from vlm_course.world.perturb import swap_words

__all__ = ["PRESETS", "NEGATIVES", "RANDOM_STEPS", "ITMBatches", "batches", "build_model",
           "evaluate", "model_from_config", "step"]

NEGATIVES = ("hard", "random")
#: Steps of random negatives before the ``tiny`` preset switches to hard ones.
RANDOM_STEPS = 200
#: The shipped CLIP whose towers the ITM presets start from.
TOWERS = "clip_tiny_shapeworld"


def _preset(negatives: str, random_steps: int) -> Callable[[], RecipePreset]:
    def make() -> RecipePreset:
        from vlm_course import pretrained  # the towers are a shipped checkpoint (lazy import)

        card = pretrained.card(TOWERS)
        model = ITMConfig.for_clip(CLIPConfig.from_dict(card["model_config"]))
        # the towers' world, with two objects in every scene (every image can be mis-bound)
        world = WorldConfig.from_dict(card["world_config"]).replace(min_objects=2, max_objects=2)
        train = TrainConfig(steps=1000, batch_size=64, lr=1e-3, weight_decay=0.01,
                            warmup_steps=50, checkpoint_every=100)
        return RecipePreset(model=model, world=world, train=train,
                            options={"negatives": negatives, "swaps": True,
                                     "random_steps": random_steps})
    return make


#: ``tiny``: hard negatives (ALBEF) after ``RANDOM_STEPS`` random ones; ``tiny_random``: uniform
#: negatives from the same pool throughout.
PRESETS: dict[str, Callable[[], RecipePreset]] = {"tiny": _preset("hard", RANDOM_STEPS),
                                                  "tiny_random": _preset("random", 0)}


def model_from_config(model_config: dict) -> ITMModel:
    """The ITM model of a card's / ``run.json``'s ``model_config`` (weights not loaded)."""
    return ITMModel(ITMConfig.from_dict(model_config))


def build_model(preset: RecipePreset) -> ITMModel:
    """An ITM model whose CLIP is the shipped ``clip_tiny_shapeworld`` (frozen) and whose fusion
    encoder is freshly initialised (seed torch first for a fixed init)."""
    from vlm_course import pretrained  # the towers are a shipped checkpoint (lazy import)

    model = ITMModel(preset.model)
    model.clip.load_state_dict(pretrained.load(TOWERS, device="cpu").state_dict())
    return model


class ITMBatches:
    """``source(step, rank, world_size) -> dict`` with ``images`` (b, 3, H, W), ``tokens`` of the
    candidate captions (C >= b; the first b are the scenes' own captions), ``positives`` (b, C)
    bool (caption c is true of image i), ``n_pairs`` = b, ``negatives`` and a per-step ``seed``
    for the sampler.  Deterministic in its arguments.  Steps before ``random_steps`` use random
    negatives whatever ``negatives`` says (a warm-up; the batch is otherwise unchanged).

    Raises TypeError for a non-world or a non-callable ``tokenize``, ValueError for
    ``batch_size < 2``, an unknown ``negatives`` or ``random_steps`` that is not an int >= 0.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, tokenize: Callable, batch_size: int, *,
                 negatives: str = "hard", swaps: bool = True, seed: int = 0,
                 split: str = "train", random_steps: int = 0) -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError(f"world: expected a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        if not callable(tokenize):
            raise TypeError(f"tokenize: expected a callable, got {type(tokenize).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size: expected an int >= 2 (negatives come from the batch), "
                             f"got {batch_size!r}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives: expected one of {NEGATIVES}, got {negatives!r}")
        if isinstance(random_steps, bool) or not isinstance(random_steps, int) or random_steps < 0:
            raise ValueError(f"random_steps: expected an int >= 0, got {random_steps!r}")
        self.random_steps = random_steps
        self.world, self.tokenize, self.batch_size = world, tokenize, batch_size
        self.negatives, self.swaps, self.seed, self.split = negatives, bool(swaps), seed, split

    def at(self, indices: Sequence[int], sampler_seed: int = 0) -> dict:
        """The batch of the given scenes.  Each scene's choices (its caption, the caption whose
        swap joins the pool, the swap) come from a generator keyed by the run's seed and the scene
        index, so they do not depend on the other scenes of the batch."""
        indices = list(indices)
        batch = self.world.batch(self.split, indices, masks=False)
        captions, extra = [], []
        for index, caps in zip(indices, batch.captions, strict=True):
            rng = random.Random(f"itm-{self.seed}-{self.split}-{index}")
            captions.append(rng.choice(caps))
            if self.swaps:   # swaps of the scene's caption and of one more of its captions
                for cap in (captions[-1], rng.choice(caps)):
                    swapped = swap_words(cap, self.world.cfg, rng)
                    if swapped is not None:
                        extra.append(swapped)
        pool = captions + [c for c in dict.fromkeys(extra) if c not in captions]
        return {"images": batch.images, "tokens": dict(self.tokenize(pool)),
                "positives": caption_truth(pool, batch.objects, self.world.cfg),
                "n_pairs": len(indices), "negatives": self.negatives, "seed": sampler_seed}

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        indices = scene_indices(step, self.batch_size, rank, world_size)
        batch = self.at(indices, sampler_seed=(self.seed * 1_000_003 + step) * 4096 + rank)
        if step < self.random_steps:
            batch["negatives"] = "random"
        return batch


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            negatives: str = "hard", swaps: bool = True, split: str = "train",
            random_steps: int = 0) -> ITMBatches:
    """The batch source of a run: ``config.batch_size`` scenes per step, captions keyed by
    ``config.seed``, tokenized by ``model.tokenize``, random negatives before ``random_steps``."""
    return ITMBatches(world, unwrap(model).tokenize, config.batch_size, negatives=negatives,
                      swaps=swaps, seed=config.seed, split=split, random_steps=random_steps)


def step(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """ITM on one batch: sample negatives, fuse B positives and the negatives, mean cross-entropy.

    Metrics: ``itm_accuracy`` (the head's accuracy on this batch's 3B pairs), ``swap_negatives``
    (the fraction of image negatives that are word-swapped captions), ``negatives_per_pair``.
    """
    bare = unwrap(model)
    images, tokens, positives = batch["images"], batch["tokens"], batch["positives"]
    B = int(batch["n_pairs"])
    with torch.no_grad():
        t = bare.towers(images, tokens)
        logits = bare.logit_scale.exp() * t["image_emb"] @ t["text_emb"].T      # (B, C)
    if batch["negatives"] == "random":
        logits = torch.zeros_like(logits)
    gen = torch.Generator(device=logits.device).manual_seed(int(batch["seed"]))
    text_for_image, image_for_text = sample_hard_negatives(logits.float(), positives, gen)
    image_for_text = image_for_text[:B]                      # only the scenes' own captions
    rows = torch.arange(B, device=logits.device)
    ok_i, ok_t = text_for_image >= 0, image_for_text >= 0
    image_index = torch.cat([rows, rows[ok_i], image_for_text[ok_t]])
    text_index = torch.cat([rows, text_for_image[ok_i], rows[ok_t]])
    labels = torch.zeros(len(image_index), dtype=torch.long, device=logits.device)
    labels[:B] = 1
    out = model(images, tokens, image_index, text_index)     # (P, 2) through DDP if wrapped
    loss = itm_loss(out.float(), labels)
    with torch.no_grad():
        metrics = {"itm_accuracy": float((out.argmax(1) == labels).float().mean()),
                   "swap_negatives": float((text_for_image[ok_i] >= B).float().mean())
                   if ok_i.any() else 0.0,
                   "negatives_per_pair": float((ok_i.sum() + ok_t.sum()) / B)}
    return loss, metrics


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, n: int = 200, seed: int = 0) -> dict:
    """The card's numbers: Winoground in miniature (text / image / group accuracy on ``n`` items
    of each kind) for the model's match probability and, for reference, for its frozen CLIP's
    cosine.  Raises ValueError for ``n < 1``."""
    from vlm_course.evaluation.winoground import KINDS, clip_scorer, evaluate_winoground

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    world = ShapeWorld(world) if isinstance(world, WorldConfig) else world
    bare = unwrap(model)
    return {"winoground": evaluate_winoground(bare.match_probability, world, KINDS, n, seed),
            "winoground_clip": evaluate_winoground(clip_scorer(bare.clip), world, KINDS, n, seed),
            "protocol": (f"vlm_course.evaluation.winoground.evaluate_winoground: {n} items of each "
                         f"kind {KINDS} (seed {seed}) composed in the world above; scorer = "
                         "match_probability (ITM) and the frozen towers' cosine (CLIP).")}
