"""The pre-training data stream: ShapeWorld image–caption pairs, a pure function of the step index.

Chapter 04.  The batch of optimiser step ``s`` with global batch size ``B`` holds the scenes
``s*B .. s*B + B - 1`` of the split (ShapeWorld renders any index on the fly, so the stream never
repeats), and for each scene one of its true captions chosen by a generator seeded with
``(seed, split, scene index)``.  Nothing depends on what ran before, so resuming at step ``s``
sees exactly the batches an uninterrupted run would, and under ``torchrun`` rank ``r`` of ``R``
takes the ``r``-th contiguous slice of the same global batch (together: the single-process batch).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence


def scene_indices(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> range:
    """Scene indices of ``rank``'s share of the global batch of ``step`` (a ``range``)."""
    if step < 0 or batch_size < 1:
        raise ValueError("need step >= 0 and batch_size >= 1, "
                         f"got step={step}, batch_size={batch_size}")
    if world_size < 1 or not 0 <= rank < world_size or batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} must split evenly over world_size={world_size} "
                         f"and rank must be in [0, world_size), got rank={rank}")
    local = batch_size // world_size
    first = step * batch_size + rank * local
    return range(first, first + local)


def choose_captions(captions: Sequence[Sequence[str]], indices: Sequence[int], seed: int,
                    split: str) -> list[str]:
    """One caption per scene, chosen by ``random.Random(f"{seed}:{split}:{index}")``.

    ``seed`` is the training run's seed (not the world's), and there are no epochs: the stream
    never revisits a scene.  The world's datasets pick with
    :func:`vlm_course.world.dataset.choose_epoch_captions` instead (another generator, salted by
    epoch); the two draw different captions on purpose and are kept apart.
    """
    return [caps[random.Random(f"{seed}:{split}:{i}").randrange(len(caps))]
            for caps, i in zip(captions, indices, strict=True)]


def clip_batch_at(world, tokenize: Callable, indices: Sequence[int], *, seed: int = 0,
                  split: str = "train"):
    """``(images (B,3,H,W) float32 in [0,1], tokens)`` for the given scene ``indices``.

    ``tokens`` is what ``tokenize(list_of_B_captions)`` returns (input ids, attention mask, ...).
    """
    batch = world.batch(split, indices, masks=False)    # no per-pixel ground truth needed
    return batch.images, tokenize(choose_captions(batch.captions, list(indices), seed, split))


def clip_batch(world, tokenize: Callable, step: int, batch_size: int, *, seed: int = 0,
               split: str = "train", rank: int = 0, world_size: int = 1):
    """The (images, tokens) pair of optimiser step ``step`` (see the module docstring)."""
    return clip_batch_at(world, tokenize, scene_indices(step, batch_size, rank, world_size),
                         seed=seed, split=split)

