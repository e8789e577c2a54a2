"""The multimodal recipe: masked cross-modal modelling + captioning on ShapeWorld (chapter 05).

FLAVA (Singh et al. 2022) / M3AE (Geng et al. 2022) for the masked objective, SimVLM's PrefixLM
(Wang et al. 2022) and CoCa's captioning loss (Yu et al. 2022) for generation.  Plugs
:class:`~vlm_course.models.multimodal.MultimodalTransformer` into the one training loop:

* :class:`MultimodalBatches` — step ``s`` reads the image-caption pairs of train scenes
  ``s*B .. s*B + B - 1`` (:meth:`ShapeWorld.pairs`, one caption per scene, rank ``r`` of ``R``
  its slice) and draws, from a generator seeded by ``(seed, step, rank, world_size)``, the image
  mask (each image its own ratio, uniform in ``[0, max_image_ratio]``; a share ``hide_image`` of
  the images fully hidden, so the model also learns to answer from the caption alone) and BERT's
  word masking at ``text_probability``;
* :func:`step` — the masked cross-modal loss (full attention: pixels of the hidden patches and the
  hidden words) plus the captioning loss (prefix attention, teacher forcing, unmasked image);
* :func:`evaluate` — the card's numbers: a hidden colour word recovered with and without the image,
  and greedy captions checked by the world's truth function, with and without the image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vlm_course.models.multimodal import MultimodalConfig, MultimodalTransformer
from vlm_course.objectives.generative import (
    caption_loss,
    masked_cross_modal_loss,
    teacher_forcing,
)
from vlm_course.objectives.masking import bert_masking
from vlm_course.recipes import RecipePreset
from vlm_course.text import Tokenizer
from vlm_course.training.data import scene_indices
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.truth import caption_is_true

__all__ = ["PRESETS", "MultimodalBatches", "batches", "build_model", "colour_recovery",
           "caption_truth", "evaluate", "model_from_config", "step"]


def _tiny() -> RecipePreset:
    world = WorldConfig(canvas=48, max_objects=1)
    vocab = Tokenizer.from_world(world).to_dict()["words"]
    return RecipePreset(
        model=MultimodalConfig.tiny(vocab),
        world=world,
        train=TrainConfig(steps=500, batch_size=64, lr=2e-3, weight_decay=0.05,
                          warmup_steps=50, checkpoint_every=100),
        options={"text_probability": 0.4, "hide_image": 0.1, "max_image_ratio": 0.5})


#: Chapter 05's multimodal transformer: 48-pixel one-object scenes (the shipped CLIP's canvas),
#: 16-pixel patches (one per grid cell), 500 steps of 64 pairs (``multimodal_tiny_shapeworld``
#: was trained with these numbers).
PRESETS: dict[str, Callable[[], RecipePreset]] = {"tiny": _tiny}


def build_model(preset: RecipePreset) -> MultimodalTransformer:
    """A freshly initialised model of ``preset.model`` (seed torch first)."""
    return MultimodalTransformer(preset.model)


def model_from_config(model_config: dict) -> MultimodalTransformer:
    """The model of a ``run.json`` / card ``model_config`` dict (weights not loaded)."""
    return MultimodalTransformer(MultimodalConfig.from_dict(model_config))


def _generator_seed(seed: int, step: int, rank: int, world_size: int) -> int:
    return (seed * 0x9E3779B1 + step * 0x85EBCA77 + rank * 0xC2B2AE3D + world_size + 9) % 2**63


class MultimodalBatches:
    """``source(step, rank, world_size) -> dict`` of ``images (b, 3, H, W)``, ``input_ids`` /
    ``attention_mask`` ``(b, L)`` (the caption), ``masked_ids`` / ``labels`` ``(b, L)`` (BERT
    masking) and ``image_mask`` ``(b, N)`` float, 1 = hidden (module docstring).

    Raises:
        TypeError: ``world`` is not a ShapeWorld / WorldConfig.
        ValueError: ``batch_size < 1``, probabilities outside [0, 1]; when called, a bad shard.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, model: MultimodalTransformer,
                 batch_size: int, *, text_probability: float = 0.4, hide_image: float = 0.1,
                 max_image_ratio: float = 0.5, seed: int = 0, split: str = "train") -> None:
        if isinstance(world, WorldConfig):
            world = ShapeWorld(world)
        if not isinstance(world, ShapeWorld):
            raise TypeError("world must be a ShapeWorld or WorldConfig, got "
                            f"{type(world).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        for name, p in (("text_probability", text_probability), ("hide_image", hide_image),
                        ("max_image_ratio", max_image_ratio)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {p}")
        world.batch(split, [], masks=False)               # checks the split now
        self.world, self.model, self.batch_size = world, unwrap(model), batch_size
        self.text_probability, self.hide_image = text_probability, hide_image
        self.max_image_ratio = max_image_ratio
        self.seed, self.split = seed, split

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        idx = scene_indices(step, self.batch_size, rank, world_size)
        images, captions = self.world.pairs(self.split, idx, seed=self.seed)
        tokens = self.model.tokenize(captions)
        gen = torch.Generator().manual_seed(_generator_seed(self.seed, step, rank, world_size))
        b, N = len(idx), self.model.config.num_patches
        ratio = torch.rand(b, 1, generator=gen) * self.max_image_ratio
        ratio[torch.rand(b, 1, generator=gen) < self.hide_image] = 1.0
        image_mask = (torch.rand(b, N, generator=gen) < ratio).float()
        if not image_mask.any():  # the pixel loss needs one hidden patch in the batch
            image_mask[0, 0] = 1.0
        words = bert_masking(tokens["input_ids"], self.model.tokenizer.vocab,
                             probability=self.text_probability, generator=gen)
        return {"images": images, **tokens, "masked_ids": words.input_ids,
                "labels": words.labels, "image_mask": image_mask}


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            text_probability: float = 0.4, hide_image: float = 0.1,
            max_image_ratio: float = 0.5, split: str = "train") -> MultimodalBatches:
    """The batch source of a run (``config.batch_size`` pairs per step, seeded by
    ``config.seed``)."""
    return MultimodalBatches(world, model, config.batch_size, text_probability=text_probability,
                             hide_image=hide_image, max_image_ratio=max_image_ratio,
                             seed=config.seed, split=split)


def step(model, batch: dict):
    """``(model, batch) -> (loss, metrics)``: masked cross-modal loss + captioning loss."""
    images, mask = batch["images"], batch["image_mask"]
    out = model(images, batch["masked_ids"], batch["attention_mask"], image_mask=mask)
    bare = unwrap(model)
    masked = masked_cross_modal_loss(bare.predict_pixels(out.image), bare.patchify(images), mask,
                                     bare.predict_masked_words(out.text), batch["labels"])
    inputs, targets = teacher_forcing(batch["input_ids"], bare.config.pad_id)
    cap = model(images, inputs, batch["attention_mask"][:, :-1], mode="prefix")
    captioning = caption_loss(bare.predict_next_words(cap.text), targets, bare.config.pad_id)
    metrics = {"image": float(masked.image.detach()), "text": float(masked.text.detach()),
               "caption": float(captioning.detach())}
    return masked.loss + captioning, metrics


@torch.no_grad()
def colour_recovery(model: MultimodalTransformer, images: torch.Tensor, captions: list[str],
                    colours: tuple[str, ...], hide_image: bool = False) -> tuple[float, int]:
    """Hide the first colour word of each caption that has one and predict it among ``colours``.

    Returns ``(accuracy, number of captions with a colour word)``; ``hide_image`` replaces every
    patch by the mask token (the caption alone).  Raises ``ValueError`` if no caption names a
    colour.
    """
    tokens = model.tokenize(captions)
    ids = tokens["input_ids"]
    colour_ids = torch.tensor([model.tokenizer.token_to_id[c] for c in colours])
    is_colour = torch.isin(ids, colour_ids)
    rows = is_colour.any(1).nonzero().flatten()
    if len(rows) == 0:
        raise ValueError("captions: none names a colour")
    pos = is_colour[rows].float().argmax(1)  # the first colour word of each such caption
    truth = ids[rows, pos]
    masked = ids[rows].clone()
    masked[torch.arange(len(rows)), pos] = model.tokenizer.mask_id
    image_mask = torch.ones(len(rows), model.config.num_patches) if hide_image else None
    out = model(images[rows], masked, tokens["attention_mask"][rows], image_mask=image_mask)
    logits = model.predict_masked_words(out.text)[torch.arange(len(rows)), pos]
    pred = colour_ids[logits[:, colour_ids].argmax(-1)]
    return float((pred == truth).float().mean()), len(rows)


@torch.no_grad()
def caption_truth(model: MultimodalTransformer, batch, cfg: WorldConfig,
                  hide_image: bool = False) -> tuple[float, list[str]]:
    """Greedy captions of a ``SceneBatch``; returns ``(share true of their scene, captions)``,
    checked by :func:`vlm_course.world.truth.caption_is_true` (background included)."""
    image_mask = (torch.ones(len(batch), model.config.num_patches) if hide_image else None)
    ids = model.generate(batch.images, image_mask=image_mask)
    texts = model.tokenizer.batch_decode(ids)
    true = [caption_is_true(t, objs, cfg, bool(bg))
            for t, objs, bg in zip(texts, batch.objects, batch.textured, strict=True)]
    return sum(true) / len(true), texts


@torch.no_grad()
def evaluate(model, world: ShapeWorld | WorldConfig, *, n: int = 1000, seed: int = 0) -> dict:
    """The card's numbers on test scenes ``0 .. n-1`` (one caption each, ``pairs`` with
    ``seed``): colour recovery with the image and with the image hidden (chance
    ``1 / len(colours)``), and the share of greedy captions true of their scene, with and without
    the image.  Raises ``ValueError`` for ``n < 1``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    world = ShapeWorld(world) if isinstance(world, WorldConfig) else world
    net = unwrap(model)
    was_training = net.training
    net.eval().cpu()
    images, captions = world.pairs("test", range(n), seed=seed)
    with_image, count = colour_recovery(net, images, captions, world.cfg.colours)
    text_only, _ = colour_recovery(net, images, captions, world.cfg.colours, hide_image=True)
    scenes = world.batch("test", range(n), masks=False)
    cap_image, examples = caption_truth(net, scenes, world.cfg)
    cap_text, text_examples = caption_truth(net, scenes, world.cfg, hide_image=True)
    net.train(was_training)
    return {
        "colour_with_image": with_image, "colour_text_only": text_only,
        "colour_chance": 1 / len(world.cfg.colours), "n_colour_captions": count,
        "captions_true_with_image": cap_image, "captions_true_text_only": cap_text,
        "n_caption_scenes": n, "caption_examples": examples[:5],
        "text_only_caption_examples": sorted(set(text_examples))[:5],
        "protocol": (f"test scenes 0..{n - 1}. Colour: the first colour word of each scene's "
                     f"caption (ShapeWorld.pairs, seed {seed}) replaced by [MASK], the arg-max "
                     "among the world's colours; text_only = every image patch replaced by the "
                     "mask token. Captions: greedy decoding (prefix attention), true when "
                     "vlm_course.world.truth.caption_is_true accepts it for the scene."),
    }
