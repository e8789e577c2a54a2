"""The two-leg recipe: two towers and a fusion encoder trained together, contrastive + ITM + MLM.

Chapter 07 (pre-training frameworks); ALBEF (Li et al. 2021) and FLAVA (Singh et al. 2022) put
a fusion encoder on top of an image tower and a text tower and train the whole model with an
image-text contrastive loss on the towers' embeddings *and* image-text matching on the fused
encoding, the ITM negatives drawn by the contrastive similarity (chapter 06's hard negatives).
Here the towers are chapter 04's tiny CLIP towers and the fusion encoder is chapter 06's, with
ALBEF's third loss, masked language modelling conditioned on the image (chapter 05's
:func:`~vlm_course.objectives.masking.bert_masking` and
:func:`~vlm_course.objectives.generative.mlm_loss`) on an MLM head
(:class:`~vlm_course.models.two_leg.TwoLegModel`, ``freeze_towers=False``), all trained from
scratch.

* :class:`TwoLegBatches` — the pairs of chapter 04's CLIP batches (:meth:`ShapeWorld.pairs`: the
  same scenes and the same caption of each scene as the two-tower and one-tower runs), plus
  word-swapped copies of those captions as extra ITM candidates
  (:func:`vlm_course.world.perturb.swap_words`, as chapter 06's ITM recipe; ``swaps="all"``: of
  every caption of each scene, since only about one caption in six of this world can be swapped:
  a scene with one object has nothing to swap, and its chosen caption may name one object; five
  times as many binding negatives did not make the 1000-step run bind, so the presets keep
  ``swaps=True``) and the truth of
  every candidate for every image (:func:`vlm_course.world.grounding.caption_truth`), and with
  ``mlm_probability > 0`` the B captions with BERT's corruption (``masked_ids``, ``mlm_labels``);
* :func:`step` — ``clip_loss`` over the B pairs + ``itm_loss`` over the B pairs and up to 2B hard
  negatives (random ones during a warm-up) + ``mlm_loss`` of the masked words given each image;
  metrics ``contrastive``, ``itm``, ``itm_accuracy``, ``mlm``, ``mlm_accuracy``, ``logit_scale``;
* :data:`PRESETS` ``tiny`` — the comparison protocol (:mod:`vlm_course.recipes.frameworks`):
  random ITM negatives for the first :data:`vlm_course.recipes.itm.RANDOM_STEPS` steps (200),
  then hard ones (chapter 06's warm-up: an ITM head shown hard negatives from step 0 settles on
  "no match"; a co-trained head starts to tell random pairs apart only after ~100 steps),
  and MLM on :data:`MLM_PROBABILITY` of the caption words; ``tiny_itm`` — the same without MLM
  (the ablation that shows what the MLM loss adds);
* :func:`evaluate` — :func:`vlm_course.evaluation.frameworks.framework_report` with the fusion
  encoder's match probability as the Winoground scorer.

The step runs the towers once (their tokens feed both losses), through the unwrapped model: the
recipe trains in one process (it raises under ``torchrun``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from vlm_course.models.clip import CLIPConfig
from vlm_course.models.two_leg import TwoLegConfig, TwoLegModel
from vlm_course.objectives.alignment import itm_loss, sample_hard_negatives
from vlm_course.objectives.contrastive import clip_loss
from vlm_course.objectives.generative import mlm_loss
from vlm_course.objectives.masking import bert_masking
from vlm_course.recipes import RecipePreset
from vlm_course.recipes.clip import after_step, shapeworld_vocab
from vlm_course.recipes.frameworks import framework_train, framework_world
from vlm_course.recipes.itm import RANDOM_STEPS
from vlm_course.training.data import scene_indices
from vlm_course.training.distributed import rank_and_world_size
from vlm_course.training.loop import TrainConfig, unwrap
from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.grounding import caption_truth
from vlm_course.world.perturb import swap_words

__all__ = ["MLM_PROBABILITY", "PRESETS", "TwoLegBatches", "after_step", "batches", "build_model",
           "evaluate", "model_from_config", "step"]

#: Share of caption words the ``tiny`` preset masks for MLM (BERT's and ALBEF's 15%).
MLM_PROBABILITY = 0.15



def _preset(mlm: bool) -> Callable[[], RecipePreset]:
    def make() -> RecipePreset:
        world = framework_world()
        model = TwoLegConfig.for_clip(CLIPConfig.tiny(shapeworld_vocab(world)),
                                      freeze_towers=False)
        model.mlm = mlm
        train = framework_train()
        return RecipePreset(model=model, world=world, train=train,
                            options={"swaps": True, "random_steps": RANDOM_STEPS,
                                     "mlm_probability": MLM_PROBABILITY if mlm else 0.0})
    return make


#: ``tiny``: the comparison protocol of chapter 07 (towers and fusion from scratch, contrastive
#: + ITM + MLM); ``tiny_itm``: the same without the MLM head and loss.
PRESETS: dict[str, Callable[[], RecipePreset]] = {"tiny": _preset(True),
                                                  "tiny_itm": _preset(False)}


def build_model(preset: RecipePreset) -> TwoLegModel:
    """A freshly initialised two-leg model (towers, fusion, heads; seed torch first)."""
    return TwoLegModel(preset.model)


def model_from_config(model_config: dict) -> TwoLegModel:
    """The two-leg model of a card's / ``run.json``'s ``model_config`` (weights not loaded)."""
    return TwoLegModel(TwoLegConfig.from_dict(model_config))


class TwoLegBatches:
    """``source(step, rank, world_size) -> dict``: ``images`` (B, 3, H, W), ``tokens`` of C >= B
    candidate captions (the first B are the scenes' own, as chapter 04's CLIP batches),
    ``positives`` (B, C) bool, ``n_pairs`` = B, a per-step sampler ``seed`` and ``negatives``:
    ``"random"`` before step ``random_steps`` (a warm-up: chapter 06 found that a fresh ITM head
    shown only hard negatives stays at "no match"), ``"hard"`` from then on.  With
    ``mlm_probability > 0`` also ``masked_ids`` (B, L) — the B captions' ids after
    :func:`~vlm_course.objectives.masking.bert_masking` over ``vocab`` — and ``mlm_labels``
    (B, L), the original id at the chosen positions and -100 elsewhere.

    Raises TypeError for a non-world or a non-callable ``tokenize``; ValueError for
    ``batch_size < 2``, ``random_steps`` that is not an int >= 0, ``mlm_probability`` outside
    [0, 1) or ``mlm_probability > 0`` without a ``vocab``.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, tokenize: Callable, batch_size: int, *,
                 swaps: bool | str = True, seed: int = 0, split: str = "train",
                 random_steps: int = 0, mlm_probability: float = 0.0,
                 vocab: Sequence[str] | None = None) -> None:
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
        self.world, self.tokenize, self.batch_size = world, tokenize, batch_size
        if isinstance(random_steps, bool) or not isinstance(random_steps, int) or random_steps < 0:
            raise ValueError(f"random_steps: expected an int >= 0, got {random_steps!r}")
        if swaps not in (True, False, "all"):
            raise ValueError(f"swaps: expected True, False or 'all', got {swaps!r}")
        self.swaps, self.seed, self.split = swaps, seed, split
        self.random_steps = random_steps
        if isinstance(mlm_probability, bool) or not isinstance(mlm_probability, (int, float)) \
                or not 0.0 <= mlm_probability < 1.0:
            raise ValueError(f"mlm_probability: expected a number in [0, 1), got "
                             f"{mlm_probability!r}")
        if mlm_probability > 0 and not vocab:
            raise ValueError("vocab: expected the tokenizer's vocabulary when mlm_probability > 0, "
                             f"got {vocab!r}")
        self.mlm_probability, self.vocab = float(mlm_probability), vocab

    def at(self, indices: Sequence[int], sampler_seed: int = 0) -> dict:
        """The batch of the given scenes (each scene's swap keyed by the seed and its index)."""
        indices = list(indices)
        images, captions = self.world.pairs(self.split, indices, seed=self.seed)
        scenes = self.world.batch(self.split, indices, masks=False)
        objects = scenes.objects
        extra = []
        if self.swaps:
            for index, caption, every in zip(indices, captions, scenes.captions, strict=True):
                rng = random.Random(f"two-leg-{self.seed}-{self.split}-{index}")
                for text in (every if self.swaps == "all" else [caption]):
                    swapped = swap_words(text, self.world.cfg, rng)
                    if swapped is not None:
                        extra.append(swapped)
        pool = captions + [c for c in dict.fromkeys(extra) if c not in captions]
        tokens = dict(self.tokenize(pool))
        batch = {"images": images, "tokens": tokens,
                 "positives": caption_truth(pool, objects, self.world.cfg),
                 "n_pairs": len(indices), "seed": sampler_seed, "negatives": "hard"}
        if self.mlm_probability > 0:            # BERT's corruption of the scenes' own captions
            gen = torch.Generator().manual_seed(sampler_seed)
            words = bert_masking(tokens["input_ids"][:len(indices)], self.vocab,
                                 probability=self.mlm_probability, generator=gen)
            batch["masked_ids"], batch["mlm_labels"] = words.input_ids, words.labels
        return batch

    def __call__(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        indices = scene_indices(step, self.batch_size, rank, world_size)
        batch = self.at(indices, sampler_seed=(self.seed * 1_000_003 + step) * 4096 + rank)
        batch["negatives"] = "random" if step < self.random_steps else "hard"
        return batch


def batches(world: ShapeWorld | WorldConfig, model, config: TrainConfig, *,
            swaps: bool | str = True,
            split: str = "train", random_steps: int = 0,
            mlm_probability: float = 0.0) -> TwoLegBatches:
    """The batch source of a run: ``config.batch_size`` scenes per step, captions keyed by
    ``config.seed`` (those of the CLIP recipe), tokenized by ``model.tokenize``; random ITM
    negatives before ``random_steps``; ``mlm_probability`` of the words masked for MLM."""
    bare = unwrap(model)
    return TwoLegBatches(world, bare.tokenize, config.batch_size, swaps=swaps,
                         seed=config.seed, split=split, random_steps=random_steps,
                         mlm_probability=mlm_probability, vocab=bare.clip.tokenizer.vocab)


def step(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """Contrastive + ITM (+ MLM when the batch holds ``masked_ids``) on one batch (see the
    module docstring).

    Raises RuntimeError under ``torchrun`` (the step bypasses the DDP wrapper), or for a batch
    with ``masked_ids`` and a model without an MLM head.
    """
    if rank_and_world_size()[1] > 1:
        raise RuntimeError("the two_leg recipe trains in one process (its step runs the towers "
                           "of the unwrapped model); run it without torchrun")
    bare = unwrap(model)
    B = int(batch["n_pairs"])
    t = bare.towers(batch["images"], batch["tokens"])
    contrastive = clip_loss(t["image_emb"].float(), t["text_emb"][:B].float(),
                            bare.logit_scale.float())
    positives = batch["positives"].to(t["image_emb"].device)
    with torch.no_grad():
        logits = bare.logit_scale.exp() * t["image_emb"].float() @ t["text_emb"].float().T
    if batch.get("negatives", "hard") == "random":
        logits = torch.zeros_like(logits)                    # uniform over the false captions
    gen = torch.Generator(device=logits.device).manual_seed(int(batch["seed"]))
    text_for_image, image_for_text = sample_hard_negatives(logits, positives, gen)
    image_for_text = image_for_text[:B]                      # only the scenes' own captions
    rows = torch.arange(B, device=logits.device)
    ok_i, ok_t = text_for_image >= 0, image_for_text >= 0
    image_index = torch.cat([rows, rows[ok_i], image_for_text[ok_t]])
    text_index = torch.cat([rows, text_for_image[ok_i], rows[ok_t]])
    labels = torch.zeros(len(image_index), dtype=torch.long, device=logits.device)
    labels[:B] = 1
    out = bare.fuse(t["image_tokens"][image_index], t["text_tokens"][text_index],
                    t["text_mask"][text_index])                            # (P, 2)
    matching = itm_loss(out.float(), labels)
    loss = contrastive + matching
    with torch.no_grad():
        metrics = {"contrastive": float(contrastive), "itm": float(matching),
                   "itm_accuracy": float((out.argmax(1) == labels).float().mean()),
                   "logit_scale": float(bare.logit_scale.exp())}
    if "masked_ids" in batch:                 # MLM: the masked words, given the image
        masked = {"input_ids": batch["masked_ids"],
                  "attention_mask": batch["tokens"]["attention_mask"][:B]}
        words, mask = bare.text_tokens(masked)                                  # (B, L, Dt)
        logits = bare.masked_word_logits(t["image_tokens"], words, mask)        # (B, L, V)
        targets = batch["mlm_labels"][:, :logits.shape[1]].to(logits.device)
        masked_loss = mlm_loss(logits.float(), targets)
        loss = loss + masked_loss
        with torch.no_grad():
            chosen = targets != -100
            metrics["mlm"] = float(masked_loss)
            metrics["mlm_accuracy"] = (float((logits.argmax(-1) == targets)[chosen].float()
                                             .mean()) if chosen.any() else 0.0)
    return loss, metrics


def evaluate(model, world, **kwargs) -> dict:
    """The card's numbers: :func:`vlm_course.evaluation.frameworks.framework_report`, with the
    fusion encoder's match probability scoring Winoground in miniature, plus
    ``winoground_towers``: the same items scored by the towers' cosine alone."""
    from vlm_course.evaluation.frameworks import framework_report
    from vlm_course.evaluation.winoground import KINDS, clip_scorer, evaluate_winoground

    bare = unwrap(model)
    report = framework_report(bare, world, scorer=bare.match_probability, **kwargs)
    n, seed = kwargs.get("n_winoground", 100), kwargs.get("seed", 0)
    world = world if hasattr(world, "compose") else ShapeWorld(world)
    report["winoground_towers"] = evaluate_winoground(clip_scorer(bare), world, KINDS, n, seed)
    return report
