"""Image–text retrieval recall@K with several captions per image (chapter 08; CLIP, Radford et al.
2021).

Protocol (as for COCO / Flickr30k in the survey's retrieval tables): every image has several true
captions.

* text → image: each caption is a query; it scores a hit at K when its own image is among the K
  images most similar to it.
* image → text: each image is a query; it scores a hit at K when the *best-ranked* of its captions
  is among the K most similar captions (any one of its captions counts).

Recall@K is the fraction of queries with a hit.  Works with any model implementing the course's VLM
interface (``encode_image``, ``encode_text``, ``tokenize``).

Duplicates: images are not de-duplicated. Two identical images get identical embeddings and tie,
and a tie counts against the query (see :func:`recall_at_k`), so a repeated image lowers recall
unless ``text_to_image`` marks the captions as true of both. ShapeWorld test scenes 0-999 at
canvas 48 and 64 hold no repeated image (``vlm_course.world.duplicates`` counts them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .checks import check_embeddings, check_images, check_ks, check_positive_int
from .zeroshot import eval_mode


def recall_at_k(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor,
                ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Retrieval recalls from embeddings.

    Args:
        image_emb: (N, D) float image embeddings (normalised or not: cosine similarity is used).
        text_emb: (M, D) float caption embeddings.
        text_to_image: either (M,) long, the index in ``[0, N)`` of the image each caption
            describes, or an (M, N) bool matrix, True where caption m is a true caption of image n
            (the same sentence can describe several images).
        ks: the cut-offs K.
    Returns:
        ``{"t2i_R@K": float, "i2t_R@K": float, ...}`` for every K, values in [0, 1].  A query's rank
        is 1 + the number of *wrong* candidates scoring at least as high as its best *true*
        candidate (ties count against the query, so a duplicate image that is not marked as
        true for the caption costs it a rank).  Images without a caption are not queried.
    Raises:
        TypeError: an embedding is not a float tensor, or ``text_to_image`` not a tensor.
        ValueError: an embedding is not finite, non-empty and 2-D, the widths D differ,
            ``text_to_image`` has the wrong shape/dtype or an index outside [0, N), a caption
            has no true image, or ``ks`` is not a non-empty sequence of ints >= 1.
    """
    check_embeddings("image_emb", image_emb, "(N, D)")
    check_embeddings("text_emb", text_emb, "(M, D)")
    if not isinstance(text_to_image, torch.Tensor):
        raise TypeError(f"text_to_image must be a torch.Tensor, got {type(text_to_image).__name__}")
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"image_emb (N,D) and text_emb (M,D) must share D, got "
                         f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    n_images, n_texts = image_emb.shape[0], text_emb.shape[0]
    owner = _owner_matrix(text_to_image, n_texts, n_images)            # (M, N) bool
    ks = check_ks(ks)
    img = torch.nn.functional.normalize(image_emb.float(), dim=-1)
    txt = torch.nn.functional.normalize(text_emb.float(), dim=-1)
    sim = txt @ img.T                                           # (M, N) caption x image

    def ranks(scores: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        best = scores.masked_fill(~true, float("-inf")).max(dim=1, keepdim=True).values
        return 1 + ((scores >= best) & ~true).sum(dim=1)       # (queries,)

    t2i_rank, i2t_rank = ranks(sim, owner), ranks(sim.T, owner.T)
    has_caption = owner.any(dim=0)                              # (N,)
    out = {}
    for k in ks:
        out[f"t2i_R@{k}"] = float((t2i_rank <= k).float().mean()) if n_texts else float("nan")
        out[f"i2t_R@{k}"] = float((i2t_rank[has_caption] <= k).float().mean()) \
            if has_caption.any() else float("nan")
    return out


def _owner_matrix(text_to_image: torch.Tensor, n_texts: int, n_images: int) -> torch.Tensor:
    """(M, N) bool "caption m describes image n" from an index vector or a bool matrix."""
    if text_to_image.dtype == torch.bool:
        if text_to_image.shape != (n_texts, n_images):
            raise ValueError(f"a bool text_to_image must have shape (M, N) = ({n_texts}, "
                             f"{n_images}), got {tuple(text_to_image.shape)}")
        if not text_to_image.any(dim=1).all():
            raise ValueError("every caption (row of text_to_image) needs at least one true image")
        return text_to_image
    if text_to_image.shape != (n_texts,) or text_to_image.dtype != torch.long:
        raise ValueError(f"text_to_image must be a long tensor of shape ({n_texts},) or a bool "
                         f"({n_texts}, {n_images}) matrix, got {text_to_image.dtype} "
                         f"{tuple(text_to_image.shape)}")
    if n_texts and (int(text_to_image.min()) < 0 or int(text_to_image.max()) >= n_images):
        raise ValueError(f"text_to_image values must lie in [0, {n_images}), got "
                         f"[{int(text_to_image.min())}, {int(text_to_image.max())}]")
    return torch.nn.functional.one_hot(text_to_image, n_images).bool()


@torch.no_grad()
def evaluate_retrieval(model, images: torch.Tensor, captions: Sequence[Sequence[str]],
                       ks: Sequence[int] = (1, 5), batch_size: int = 256) -> dict[str, float]:
    """Encode ``images`` (N, 3, H, W) and their caption lists with ``model``; return
    :func:`recall_at_k`.

    ``captions[i]`` is the list of true captions of image ``i`` (at least one each).  Identical
    sentences are encoded once and count as a true caption of every image that has them (in a
    synthetic world "there are two objects" describes many scenes).

    Raises ``TypeError`` / ``ValueError`` when ``images`` is not a non-empty float (N, 3, H, W)
    tensor, ``captions`` is not one non-empty list of strings per image, ``batch_size`` is not an
    int >= 1, or ``ks`` is invalid (see :func:`recall_at_k`).
    """
    check_images("images", images)
    check_positive_int("batch_size", batch_size)
    check_ks(ks)
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(f"captions must be a list of caption lists, got {type(captions).__name__}")
    if any(isinstance(c, str) or not isinstance(c, Sequence)
           or not all(isinstance(t, str) for t in c) for c in captions):
        raise TypeError("captions must hold one list of strings per image (captions[i] lists "
                        "the true captions of image i)")
    if len(captions) != images.shape[0]:
        raise ValueError(f"images must be (N,3,H,W) with one caption list per image, got "
                         f"{tuple(images.shape)} and {len(captions)} caption lists")
    if any(len(c) == 0 for c in captions):
        raise ValueError("every image needs at least one caption")
    flat = list(dict.fromkeys(c for caps in captions for c in caps))  # unique, first-seen order
    row = {c: m for m, c in enumerate(flat)}
    owner = torch.zeros(len(flat), len(captions), dtype=torch.bool)  # (M, N)
    for i, caps in enumerate(captions):
        for c in caps:
            owner[row[c], i] = True
    with eval_mode(model):
        img = torch.cat([model.encode_image(images[i:i + batch_size])
                         for i in range(0, images.shape[0], batch_size)])
        txt = torch.cat([model.encode_text(model.tokenize(flat[i:i + batch_size]))
                         for i in range(0, len(flat), batch_size)])
    return recall_at_k(img.cpu(), txt.cpu(), owner, ks)
