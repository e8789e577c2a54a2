"""Which examples a step trains on: the shard of a global batch, a pure function of the step.

Chapter 04.  A batch source (``batches(step, rank, world_size)``, see
:mod:`vlm_course.training.loop`) over an indexable, never-ending source such as ShapeWorld gives
optimiser step ``s`` with global batch size ``B`` the examples ``s*B .. s*B + B - 1``; under
``torchrun`` rank ``r`` of ``R`` takes the ``r``-th contiguous slice (``B / R`` examples), so the
ranks together hold exactly the single-process batch and no example is seen twice.  Nothing
depends on what ran before, so a resumed run sees the batches an uninterrupted run would.
"""

from __future__ import annotations

__all__ = ["scene_indices"]


def scene_indices(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> range:
    """Example indices of ``rank``'s share of the global batch of ``step`` (a ``range``).

    Raises:
        ValueError: ``step < 0``, ``batch_size < 1``, ``world_size < 1``, ``rank`` outside
            ``[0, world_size)`` or a ``batch_size`` that does not split evenly over the ranks.
    """
    for name, value, low in (("step", step, 0), ("batch_size", batch_size, 1),
                             ("world_size", world_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an int in [0, world_size={world_size}), got {rank!r}")
    if batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} must split evenly over "
                         f"world_size={world_size} ranks")
    local = batch_size // world_size
    first = step * batch_size + rank * local
    return range(first, first + local)
