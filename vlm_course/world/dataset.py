"""PyTorch datasets over ShapeWorld: a map-style dataset and a collate function.

Chapter 03 (datasets); later chapters evaluate on :class:`ShapeWorldDataset`, which renders whole
batches at once (it implements ``__getitems__``, which ``DataLoader`` calls with a whole batch of
indices).  Pre-training does not use a ``DataLoader``: the one training loop asks a batch source
for the batch of each step (:class:`vlm_course.recipes.clip.ClipBatches`, built on
:meth:`vlm_course.world.ShapeWorld.pairs`), so there is exactly one way to stream pre-training data.

A collated batch (from :func:`collate_scenes`) is a dict:

==================  ==========================================================================
key                 value
==================  ==========================================================================
images              (B, 3, H, W) float32 in [0, 1]
indices             (B,) int64 scene indices within the split
captions            list of B str: the caption chosen for each scene (see ``caption``)
all_captions        list of B lists of str
input_ids           (B, L) int64, attention_mask (B, L) int64, eot_index (B,) int64 -- only
                    when a tokenizer is given
labels              dict of (B,) int64 ("shape", "colour", "size", "position", "count", ...)
instance_masks      (B, H, W) int64; semantic_masks (B, H, W) int64 (None if masks=False)
boxes               list of B (n_b, 4) float32 xyxy boxes (empty lists if masks=False)
objects             list of B lists of per-object dicts; caption_noise: list of B lists
==================  ==========================================================================
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import WorldConfig
from .sampling import mix64, scene_keys
from .world import SceneBatch, ShapeWorld

CAPTION_CHOICES = ("first", "random")


def _as_world(world: ShapeWorld | WorldConfig) -> ShapeWorld:
    if isinstance(world, WorldConfig):
        return ShapeWorld(world)
    if not isinstance(world, ShapeWorld):
        raise TypeError(f"world: expected a ShapeWorld or WorldConfig, got {type(world).__name__}")
    return world


def _check_caption(caption, n_captions: int):
    if caption in CAPTION_CHOICES:
        return caption
    if isinstance(caption, int) and not isinstance(caption, bool) and 0 <= caption < n_captions:
        return caption
    raise ValueError(f"caption: expected one of {CAPTION_CHOICES} or an int in "
                     f"[0, {n_captions}), got {caption!r}")


def _check_options(context_length, masks) -> None:
    if isinstance(context_length, bool) or not isinstance(context_length, int) or (
        context_length < 3
    ):
        raise ValueError(f"context_length: expected an int >= 3, got {context_length!r}")
    if not isinstance(masks, bool):
        raise TypeError(f"masks: expected a bool, got {type(masks).__name__}")


def choose_epoch_captions(world: ShapeWorld, batch: SceneBatch, caption, epoch: int) -> list[str]:
    """One caption per scene: the first, a fixed index, or "random" = a stable hash of
    (world seed, split, index, epoch), so each epoch sees a different but reproducible caption.
    Raises ``ValueError`` for a ``caption`` that is none of these.

    Not to be confused with the pre-training caption of :meth:`ShapeWorld.pairs`, which has no
    epochs and is drawn with the *run's* seed instead.
    """
    caption = _check_caption(caption, world.cfg.n_captions)
    if caption == "first":
        return [caps[0] for caps in batch.captions]
    if isinstance(caption, int):
        return [caps[caption] for caps in batch.captions]
    keys = scene_keys(world.cfg.seed, batch.split, np.asarray(batch.indices), salt=7 + epoch)
    picks = (mix64(keys) % np.uint64(world.cfg.n_captions)).astype(np.int64)
    return [caps[int(k)] for caps, k in zip(batch.captions, picks, strict=True)]


def batch_to_dict(world: ShapeWorld, batch: SceneBatch, caption="first", epoch: int = 0,
                  tokenizer=None, context_length: int = 32) -> dict:
    """A :class:`SceneBatch` as the collated dict of the module docstring.

    Raises what :func:`choose_epoch_captions` and the tokenizer raise.
    """
    chosen = choose_epoch_captions(world, batch, caption, epoch)
    out = {
        "images": batch.images, "indices": torch.tensor(batch.indices, dtype=torch.long),
        "captions": chosen, "all_captions": batch.captions, "labels": batch.labels,
        "instance_masks": batch.instance_masks, "semantic_masks": batch.semantic_masks,
        "boxes": batch.boxes, "objects": batch.objects, "caption_noise": batch.caption_noise,
    }
    if tokenizer is not None:
        out.update(tokenizer(chosen, context_length=context_length))
    return out


class ShapeWorldDataset(Dataset):
    """Map-style dataset of ``size`` fixed scenes of one split: item i is scene ``start + i``.

    Items are dicts with the keys of the module table in singular form, one scene each
    (``image`` (3, H, W), ``caption`` str, ``input_ids`` (L,), ``labels`` dict of 0-d tensors,
    ``instance_mask`` (H, W), ``boxes`` (n, 4), ...); :func:`collate_scenes` stacks them back.

    Raises ``TypeError`` for a ``world`` that is neither a ShapeWorld nor a WorldConfig or a
    non-bool ``masks``; ``ValueError`` for a bad ``size`` (int >= 1), ``start`` (int >= 0),
    ``split``, ``caption`` or ``context_length`` (int >= 3); indexing past ``size`` raises
    ``IndexError``.
    """

    def __init__(self, world: ShapeWorld | WorldConfig, split: str = "train", size: int = 1000,
                 tokenizer=None, context_length: int = 32, caption="first", start: int = 0,
                 masks: bool = True) -> None:
        self.world = _as_world(world)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size: expected an int >= 1, got {size!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start: expected an int >= 0, got {start!r}")
        self.world.batch(split, [])  # validates the split
        _check_options(context_length, masks)
        self.split, self.size, self.start, self.masks = split, size, start, masks
        self.tokenizer, self.context_length = tokenizer, context_length
        self.caption = _check_caption(caption, self.world.cfg.n_captions)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Changes which caption ``caption="random"`` picks (call once per epoch).

        Raises ``ValueError`` when ``epoch`` is not an int >= 0.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]

    def __getitems__(self, items: Sequence[int]) -> list[dict]:
        items = [int(i) for i in items]
        bad = [i for i in items if not -self.size <= i < self.size]
        if bad:
            raise IndexError(f"index {bad[0]} out of range for a dataset of size {self.size}")
        idx = [self.start + (i % self.size) for i in items]
        batch = self.world.batch(self.split, idx, masks=self.masks)
        d = batch_to_dict(self.world, batch, self.caption, self.epoch, self.tokenizer,
                          self.context_length)
        return unbatch(d)


_PLURAL = {"images": "image", "captions": "caption", "instance_masks": "instance_mask",
           "semantic_masks": "semantic_mask", "indices": "index"}


def unbatch(d: dict) -> list[dict]:
    """Split a collated dict into per-scene dicts (singular keys for per-scene tensors).

    Raises ``TypeError`` when ``d`` is not a dict with a ``captions`` list.
    """
    if not isinstance(d, dict) or not isinstance(d.get("captions"), list):
        raise TypeError(f"d: expected a collated batch dict with a 'captions' list, got "
                        f"{type(d).__name__}")
    B = len(d["captions"])
    samples = []
    for b in range(B):
        s = {}
        for key, value in d.items():
            name = _PLURAL.get(key, key)
            if key == "labels":
                s[name] = {k: v[b] for k, v in value.items()}
            elif value is None:
                s[name] = None
            else:
                s[name] = value[b]
        samples.append(s)
    return samples


def collate_scenes(samples: list[dict]) -> dict:
    """Stack per-scene dicts from :class:`ShapeWorldDataset` into the batch dict (module table).

    Raises ``ValueError`` for an empty list and ``TypeError`` when an item is not a dict.
    """
    if not isinstance(samples, (list, tuple)) or not samples:
        raise ValueError(f"samples: expected a non-empty list of scene dicts, got {samples!r:.80}")
    bad = [type(x).__name__ for x in samples if not isinstance(x, dict)]
    if bad:
        raise TypeError(f"samples: expected dicts from ShapeWorldDataset, got {bad[:3]}")
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        batch_key = {v: k for k, v in _PLURAL.items()}.get(key, key)
        if key == "labels":
            out[key] = {k: torch.stack([v[k] for v in values]) for k in values[0]}
        elif values[0] is None:
            out[batch_key] = None
        elif isinstance(values[0], torch.Tensor) and key != "boxes":
            out[batch_key] = torch.stack(values)
        else:
            out[batch_key] = values
    return out
