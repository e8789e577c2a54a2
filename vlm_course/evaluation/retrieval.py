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
    """
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"image_emb (N,D) and text_emb (M,D) must share D, got "
                         f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    n_images, n_texts = image_emb.shape[0], text_emb.shape[0]
    owner = _owner_matrix(text_to_image, n_texts, n_images)            # (M, N) bool
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
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
    """
    if images.ndim != 4 or len(captions) != images.shape[0]:
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
