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


# ----------------------------------------------------------------------------------------------
# Chapter 08 additions: full ranks, R@1/5/10 and median rank, explicit tie and duplicate rules.
# (recall_at_k above keeps its pessimistic tie rule; retrieval_metrics(ties="pessimistic") equals
# it.)
# ----------------------------------------------------------------------------------------------

TIE_RULES = ("expected", "pessimistic")


def _tie_counts(scores: torch.Tensor, true: torch.Tensor):
    """Per query (row): wrong candidates strictly above the best true one (g), wrong ones tied
    with it (t) and true ones tied with it (q)."""
    best = scores.masked_fill(~true, float("-inf")).max(dim=1, keepdim=True).values
    g = ((scores > best) & ~true).sum(dim=1)
    t = ((scores == best) & ~true).sum(dim=1)
    q = ((scores == best) & true).sum(dim=1)
    return g, t, q


def _hit_probability(g: torch.Tensor, t: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    """P(rank <= k) when the t + q tied candidates are in a uniformly random order: the first
    true one is within the first j = k - g tied slots unless those j slots are all wrong, which
    has probability C(t, j) / C(t + q, j) (computed with log-gamma)."""
    g, t, q = g.double(), t.double(), q.double()
    j = (k - g).clamp(min=0)
    js = torch.minimum(j, t)                                   # inside the valid range of C(t, j)
    log_all_wrong = (torch.lgamma(t + 1) - torch.lgamma(t - js + 1)
                     - torch.lgamma(t + q + 1) + torch.lgamma(t + q - js + 1))
    hit = 1.0 - log_all_wrong.exp()
    hit = torch.where(j > t, torch.ones_like(hit), hit)        # more slots than tied wrong ones
    return torch.where(j <= 0, torch.zeros_like(hit), hit)


def _similarities(image_emb, text_emb, text_to_image):
    if not torch.is_tensor(image_emb) or not torch.is_tensor(text_emb) or image_emb.ndim != 2 \
            or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"image_emb (N, D) and text_emb (M, D) must share D, got "
                         f"{tuple(getattr(image_emb, 'shape', ()))} and "
                         f"{tuple(getattr(text_emb, 'shape', ()))}")
    owner = _owner_matrix(text_to_image, text_emb.shape[0], image_emb.shape[0])   # (M, N)
    img = torch.nn.functional.normalize(image_emb.double(), dim=-1)
    txt = torch.nn.functional.normalize(text_emb.double(), dim=-1)
    return txt @ img.T, owner.cpu()                                  # (M, N) caption x image


def _rank_parts(image_emb, text_emb, text_to_image, ties: str) -> dict[str, tuple]:
    """``{"t2i": (g, t, q), "i2t": (g, t, q)}`` for the queries that have a true candidate."""
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    sim, owner = _similarities(image_emb, text_emb, text_to_image)
    out = {}
    for name, scores, true in (("t2i", sim, owner), ("i2t", sim.T, owner.T)):
        keep = true.any(dim=1)
        out[name] = _tie_counts(scores[keep], true[keep])
    return out


def _rank(g: torch.Tensor, t: torch.Tensor, q: torch.Tensor, ties: str) -> torch.Tensor:
    extra = t.double() if ties == "pessimistic" else t.double() / (q.double() + 1)
    return 1.0 + g.double() + extra


def retrieval_ranks(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor,
                    ties: str = "expected") -> tuple[torch.Tensor, torch.Tensor]:
    """Rank of the first true candidate for every query, both directions (chapter 08).

    Arguments as for :func:`recall_at_k` (cosine similarity; ``text_to_image`` (M,) long or an
    (M, N) bool "is a true caption of" matrix).  Returns ``(t2i, i2t)`` float64 ranks, 1 = first:
    ``t2i`` (M,) for every caption query, ``i2t`` (N',) for every image that has a caption.
    Rule for ties with the best true candidate: ``"pessimistic"`` puts every tied wrong candidate
    first (rank = 1 + #wrong scoring >= best true, as :func:`recall_at_k`); ``"expected"``
    (default) breaks ties uniformly at random and returns the expected rank
    ``1 + g + t / (q + 1)`` (g wrong above, t wrong tied, q true tied), so a constant model gets
    exactly chance.  Raises ValueError for mismatched shapes or an unknown tie rule.
    """
    parts = _rank_parts(image_emb, text_emb, text_to_image, ties)
    return _rank(*parts["t2i"], ties), _rank(*parts["i2t"], ties)


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor,
                      text_to_image: torch.Tensor, ks: Sequence[int] = (1, 5, 10),
                      ties: str = "expected") -> dict[str, float]:
    """R@K in both directions, median and mean rank (chapter 08; the survey's retrieval tables).

    Returns ``"t2i_R@K"`` and ``"i2t_R@K"`` for every K, ``"t2i_median_rank"``,
    ``"i2t_median_rank"``, ``"t2i_mean_rank"``, ``"i2t_mean_rank"``; recalls in [0, 1].  With
    ``ties="expected"`` R@K is the probability of a hit under uniformly random tie-breaking (see
    :func:`retrieval_ranks`), so a constant model scores K / N (one true candidate among N);
    with ``"pessimistic"`` it equals :func:`recall_at_k`.  Median rank: the lower median
    (``torch.median``) of the ranks.
    Raises ValueError for mismatched shapes, an unknown tie rule or K < 1.
    """
    if isinstance(ks, int) or not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of integers >= 1, got {ks!r}")
    out: dict[str, float] = {}
    for name, (g, t, q) in _rank_parts(image_emb, text_emb, text_to_image, ties).items():
        for k in ks:
            hit = (g + t < int(k)).double() if ties == "pessimistic" \
                else _hit_probability(g, t, q, int(k))
            out[f"{name}_R@{int(k)}"] = float(hit.mean()) if len(hit) else float("nan")
        rank = _rank(g, t, q, ties)
        out[f"{name}_median_rank"] = float(rank.median()) if len(rank) else float("nan")
        out[f"{name}_mean_rank"] = float(rank.mean()) if len(rank) else float("nan")
    return out


def duplicate_ids(images: torch.Tensor) -> torch.Tensor:
    """(N,) int64 id per image: bit-identical images share an id (ids in order of first
    appearance), found by :func:`vlm_course.world.duplicates.image_digests`.  A procedural world
    can render the same scene twice.  Raises ValueError when ``images`` is not (N, C, H, W)."""
    from vlm_course.world.duplicates import image_digests

    first: dict[str, int] = {}
    return torch.tensor([first.setdefault(d, len(first)) for d in image_digests(images)],
                        dtype=torch.long).reshape(-1)


def caption_owner(captions: Sequence[Sequence[str]],
                  groups: torch.Tensor | None = None) -> tuple[list[str], torch.Tensor]:
    """The caption side of the retrieval protocol, with its rules for duplicates.

    captions: N lists of true captions (at least one each).  Identical sentences are one caption
    query, true for every image that has it; with ``groups`` ((N,) ids from
    :func:`duplicate_ids`), identical images are one image for scoring: each caption is also
    true for every duplicate of its image, so retrieving the twin is not an error.  (Each image
    still is its own query.)  Returns ``(unique captions (M), owner (M, N) bool)``.
    """
    if isinstance(captions, str) or len(captions) == 0 or any(
            isinstance(c, str) or len(c) == 0 for c in captions):
        raise ValueError("captions must be one non-empty list of strings per image")
    flat = list(dict.fromkeys(c for caps in captions for c in caps))  # unique, first-seen order
    row = {c: m for m, c in enumerate(flat)}
    owner = torch.zeros(len(flat), len(captions), dtype=torch.bool)  # (M, N)
    for i, caps in enumerate(captions):
        for c in caps:
            owner[row[c], i] = True
    if groups is not None:
        if groups.shape != (len(captions),):
            raise ValueError(f"groups must be ({len(captions)},) ids, got {tuple(groups.shape)}")
        same = groups[:, None] == groups[None, :]                    # (N, N) duplicates
        owner = (owner.double() @ same.double()) > 0
    return flat, owner


@torch.no_grad()
def evaluate_retrieval_ranked(model, images: torch.Tensor, captions: Sequence[Sequence[str]],
                              ks: Sequence[int] = (1, 5, 10), ties: str = "expected",
                              merge_duplicate_images: bool = True,
                              batch_size: int = 256) -> dict[str, float]:
    """Encode ``images`` (N, 3, H, W) and their captions with ``model`` and return
    :func:`retrieval_metrics` (R@1/5/10 both ways, median and mean rank), under the duplicate
    rules of :func:`caption_owner` (identical images merged when ``merge_duplicate_images``) and
    the tie rule ``ties``.  Adds ``"n_images"``, ``"n_captions"`` and ``"n_duplicate_images"``.
    """
    if not torch.is_tensor(images) or images.ndim != 4 or len(captions) != images.shape[0]:
        raise ValueError(f"images must be (N, 3, H, W) with one caption list per image, got "
                         f"{tuple(getattr(images, 'shape', ()))} and {len(captions)} lists")
    groups = duplicate_ids(images) if merge_duplicate_images else None
    flat, owner = caption_owner(captions, groups)
    with eval_mode(model):
        img = torch.cat([model.encode_image(images[i:i + batch_size]).float().cpu()
                         for i in range(0, images.shape[0], batch_size)])
        txt = torch.cat([model.encode_text(model.tokenize(flat[i:i + batch_size])).float().cpu()
                         for i in range(0, len(flat), batch_size)])
    out = retrieval_metrics(img, txt, owner, ks, ties)
    n_dup = images.shape[0] - int(groups.max()) - 1 if groups is not None else 0
    out.update(n_images=images.shape[0], n_captions=len(flat), n_duplicate_images=n_dup)
    return out
