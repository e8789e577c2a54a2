"""The numbers of chapter 07's framework comparison, for any model with the VLM interface.

Chapter 07 (pre-training frameworks).  One report per model, each part the evaluation of an
earlier chapter on the same ShapeWorld test scenes:

* zero-shot colour / shape / colour+shape accuracy on single-object test scenes (chapter 08's
  :func:`~vlm_course.evaluation.zeroshot.evaluate_shapeworld`);
* the same zero-shot tasks with **misspelt class names** (:func:`zeroshot_misspelt`; one typo
  per name, :mod:`vlm_course.text.typos`): a model with a word vocabulary reads a misspelt
  name as ``[UNK]``, a model that reads rendered text (CLIPPO) sees nearly the right picture;
* retrieval R@1 image→text and text→image (:func:`~vlm_course.evaluation.retrieval.
  evaluate_retrieval`, every caption of each scene true);
* Winoground in miniature (chapter 06, :mod:`vlm_course.evaluation.winoground`): binding,
  relation and count pairs, scored by the model's cosine or by a given scorer (a fusion
  encoder's match probability).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .checks import check_positive_int

__all__ = ["framework_report", "index_captions", "score_captions", "zeroshot_misspelt"]


def _world(world):
    from vlm_course.world import ShapeWorld, WorldConfig

    if isinstance(world, WorldConfig):
        return ShapeWorld(world)
    if not isinstance(world, ShapeWorld):
        raise TypeError(f"world: expected a ShapeWorld or WorldConfig, got {type(world).__name__}")
    return world


@torch.no_grad()
def zeroshot_misspelt(model, world, n: int = 500, *, split: str = "test",
                      kinds: Sequence[str] = ("swap", "drop", "double")) -> dict:
    """Zero-shot colour and shape accuracy when every class name carries one typo.

    ``n`` single-object scenes ``0 .. n-1`` of ``split``; the prompts of
    :func:`~vlm_course.evaluation.zeroshot.shapeworld_prompts` with the class names misspelt by
    :func:`vlm_course.text.typos.misspell` (the template words stay right).  Returns
    ``{task: {kind: accuracy, ..., "mean": accuracy}}`` for ``task`` in colour, shape, and
    ``"clean"``: ``{task: accuracy}`` without typos, on the same images.

    Raises TypeError for a non-world; ValueError for ``n < 1`` or an unknown typo kind.
    """
    from vlm_course.text.typos import TYPOS, misspell

    from .zeroshot import build_classifier, encode_images, shapeworld_prompts, zeroshot_logits

    world = _world(world)
    check_positive_int("n", n)
    if isinstance(kinds, str) or not kinds or any(k not in TYPOS for k in kinds):
        raise ValueError(f"kinds: expected a non-empty list from {TYPOS}, got {kinds!r}")
    cfg = world.cfg.replace(min_objects=1, max_objects=1)
    batch = type(world)(cfg).batch(split, range(n), masks=False)
    emb = encode_images(model, batch.images)                           # (n, D)
    out: dict = {"clean": {}}
    def accuracy(classnames: list[str], templates: list[str], y: torch.Tensor) -> float:
        logits = zeroshot_logits(emb, build_classifier(model, classnames, templates))
        return float((logits.argmax(dim=1) == y).float().mean())

    for task in ("colour", "shape"):
        names, templates = shapeworld_prompts(cfg, task)
        y = batch.labels[task]
        out["clean"][task] = accuracy(names, templates, y)
        out[task] = {k: accuracy([misspell(c, k) for c in names], templates, y) for k in kinds}
        out[task]["mean"] = sum(out[task][k] for k in kinds) / len(kinds)
    return out


@torch.no_grad()
def index_captions(model, captions: Sequence[str], *, fused: bool = False):
    """What ranking ``captions`` needs once, before any image: a two-tower or one-tower model's
    ``(M, D)`` unit caption embeddings; with ``fused=True`` (a two-leg
    :class:`~vlm_course.models.itm.ITMModel`) its text tower's token features ``(M, L, Dt)`` and
    mask ``(M, L)``, since the fusion encoder itself must see every (image, caption) pair.

    Raises TypeError for a str instead of a list, or ``fused=True`` without a fusion encoder.
    """
    if isinstance(captions, str):
        raise TypeError("captions: expected a list of str, got a str")
    if fused and not callable(getattr(model, "fuse", None)):
        raise TypeError(f"model: fused=True needs a model with a fusion encoder (fuse), got "
                        f"{type(model).__name__}")
    tokens = model.tokenize(list(captions))
    return model.text_tokens(tokens) if fused else model.encode_text(tokens)


@torch.no_grad()
def score_captions(model, image: torch.Tensor, index, *, fused: bool = False) -> torch.Tensor:
    """``(M,)`` scores of the indexed captions for one image ``(1, 3, H, W)``: cosine (dot
    product of unit embeddings), or with ``fused=True`` the fusion encoder's match logit of each
    of the M pairs as log-odds (one fusion pass per caption).

    Raises ValueError unless ``image`` is one ``(1, 3, H, W)`` image.
    """
    if not torch.is_tensor(image) or image.dim() != 4 or image.shape[0] != 1:
        got = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
        raise ValueError(f"image: expected one (1, 3, H, W) image, got {got}")
    if not fused:
        return (model.encode_image(image) @ index.T)[0]
    words, mask = index
    tokens = model.image_tokens(image).expand(words.shape[0], -1, -1)   # (M, N, Di), no copy
    logits = model.fuse(tokens, words, mask)                             # (M, 2)
    return logits[:, 1] - logits[:, 0]              # match vs no match: the log-odds of a match


@torch.no_grad()
def framework_report(model, world, *, scorer: Callable | None = None, n_zeroshot: int = 500,
                     n_retrieval: int = 500, n_winoground: int = 100, seed: int = 0) -> dict:
    """Every column of the comparison for one model (see the module docstring).

    model: any model with the VLM interface (``tokenize``, ``encode_image``, ``encode_text``).
    world: the ShapeWorld (or its WorldConfig) the model was trained on; test split throughout.
    scorer: Winoground scorer ``(images, texts) -> (B,)``; default the model's cosine.
    Returns ``{"zeroshot", "misspelt", "retrieval", "winoground", "protocol"}``.

    Raises TypeError for a non-world or a model without the VLM interface; ValueError for counts
    that are not ints >= 1.
    """
    from .retrieval import evaluate_retrieval
    from .winoground import KINDS, clip_scorer, evaluate_winoground
    from .zeroshot import evaluate_shapeworld

    world = _world(world)
    for name, value in (("n_zeroshot", n_zeroshot), ("n_retrieval", n_retrieval),
                        ("n_winoground", n_winoground)):
        check_positive_int(name, value)
    scorer = clip_scorer(model) if scorer is None else scorer
    zeroshot = evaluate_shapeworld(model, world.cfg, n=n_zeroshot, split="test", start=0)
    batch = world.batch("test", range(n_retrieval), masks=False)
    retrieval = evaluate_retrieval(model, batch.images, batch.captions, ks=(1,))
    return {
        "zeroshot": {k: zeroshot[f"all_{k}"] for k in ("colour", "shape", "colour+shape")},
        "misspelt": zeroshot_misspelt(model, world, n_zeroshot),
        "retrieval": retrieval,
        "winoground": evaluate_winoground(scorer, world, KINDS, n_winoground, seed),
        "protocol": (f"test split of the world above: zero-shot on single-object scenes "
                     f"0..{n_zeroshot - 1} (evaluate_shapeworld; misspelt = class names with one "
                     f"typo, zeroshot_misspelt), retrieval R@1 on scenes 0..{n_retrieval - 1} "
                     f"with all their captions, Winoground in miniature: {n_winoground} items "
                     f"of each kind {KINDS} (seed {seed})"),
    }
