"""Paired image-caption similarity: the matrix a contrastive model is trained to make diagonal.

Chapter 04 (CLIP pre-training, Radford et al. 2021).  Given ``N`` images and their ``N`` captions
(caption ``i`` describes image ``i``), :func:`pair_similarity` is the ``(N, N)`` cosine matrix whose
diagonal holds the matching pairs; :func:`diagonal_margin` and :func:`diagonal_top1` are the two
numbers that show training made it diagonal.  (For retrieval with several captions per image and
ties handled, see :mod:`vlm_course.evaluation.retrieval`.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .checks import check_images, check_strings
from .zeroshot import eval_mode


def _check_square(sim: object) -> torch.Tensor:
    if not isinstance(sim, torch.Tensor):
        raise TypeError(f"sim must be a torch.Tensor (N, N), got {type(sim).__name__}")
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2:
        raise ValueError(f"sim must be a square (N, N) matrix with N >= 2, got shape "
                         f"{tuple(sim.shape)}")
    if not sim.is_floating_point():
        raise TypeError(f"sim must be a floating-point tensor, got dtype {sim.dtype}")
    if not torch.isfinite(sim).all():
        raise ValueError("sim must be finite, got NaN or inf values")
    return sim


@torch.no_grad()
def pair_similarity(model, images: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
    """Cosine similarity of every image (rows) with every caption (columns).

    Args:
        model: any model with the VLM interface (``encode_image``, ``encode_text``, ``tokenize``);
            evaluated in eval mode (its previous mode is restored).
        images: ``(N, 3, H, W)`` float images.
        captions: ``N`` strings, caption ``i`` paired with image ``i``.

    Returns:
        ``(N, N)`` float tensor; entry ``[i, j]`` is the cosine of image ``i`` and caption ``j``.

    Raises:
        TypeError / ValueError: ``images`` not an ``(N, 3, H, W)`` float batch, ``captions`` not
            a list of strings, or their lengths differ.
    """
    check_images("images", images)
    captions = check_strings("captions", captions)
    if len(captions) != len(images):
        raise ValueError(f"captions must pair one-to-one with images: got {len(captions)} "
                         f"captions for {len(images)} images")
    with eval_mode(model):
        image_emb = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        text_emb = torch.nn.functional.normalize(
            model.encode_text(model.tokenize(captions)), dim=-1)
    return image_emb @ text_emb.T


def diagonal_margin(sim: torch.Tensor) -> float:
    """Mean similarity of the matching pairs minus the mean of the non-matching ones.

    ``sim``: ``(N, N)``, ``N >= 2``.  Zero for an untrained model (no preference), positive when
    matching pairs are pulled together.  Raises ``TypeError``/``ValueError`` naming ``sim``.
    """
    sim = _check_square(sim)
    off = ~torch.eye(len(sim), dtype=torch.bool, device=sim.device)
    return float(sim.diagonal().mean() - sim[off].mean())


def diagonal_top1(sim: torch.Tensor) -> float:
    """Fraction of rows whose largest entry is on the diagonal (image -> caption top-1).

    ``sim``: ``(N, N)``, ``N >= 2``; chance is ``1 / N``.  A tie counts as a hit only if the
    diagonal is the first maximum (``argmax``), so a constant matrix scores ``1 / N``.
    Raises ``TypeError``/``ValueError`` naming ``sim``.
    """
    sim = _check_square(sim)
    return float((sim.argmax(dim=1) == torch.arange(len(sim), device=sim.device)).float().mean())
