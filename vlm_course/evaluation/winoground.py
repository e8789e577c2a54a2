"""Winoground in miniature: caption pairs with the same words in a different structure.

Chapter 06 (alignment objectives); the benchmark idea is Winoground (Thrush et al. 2022), and
ARO (Yuksekgonul et al. 2023) showed the same failure with attribute and relation swaps: a
contrastive two-tower model tends to read a caption as a bag of words.  Each item here is two
ShapeWorld images and two captions that use exactly the same words (the same multiset), where
caption ``c`` is true of image ``c`` and false of the other one:

* ``"binding"`` — the colours of two objects swap: "a red circle and a blue square" vs
  "a blue circle and a red square" (same objects' shapes, sizes and cells);
* ``"relation"`` — the two objects swap cells and the caption swaps its arguments:
  "a large red circle left of a blue square" vs "a large blue square left of a red circle"
  (both objects have the same size; the relation is one of left of / right of / above / below);
* ``"count"`` — three objects, recoloured: "one red object and two blue objects" vs
  "two red objects and one blue object".

Scores follow Winoground's definitions.  With ``s(c, i)`` a scorer's score of caption ``c`` for
image ``i``: the **text** score is right when, for each image, its own caption scores higher than
the other caption; the **image** score is right when, for each caption, its own image scores higher
than the other image; the **group** score is right when both are.  Chance is 1/4, 1/4 and 1/6.
A scorer is any callable ``scorer(images (B, 3, H, W) float in [0, 1], texts: list[str]) -> (B,)``
that scores aligned pairs, higher = better match: a CLIP's cosine (:func:`clip_scorer`), an ITM
model's match probability, ... so chapter 07 and the benchmarks chapter reuse it unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["KINDS", "WinogroundSet", "make_pairs", "score_pairs", "winoground_scores",
           "clip_scorer", "evaluate_winoground", "CHANCE", "same_words"]

KINDS = ("binding", "relation", "count")
#: Accuracy of a scorer that ranks at random (Thrush et al. 2022).
CHANCE = {"text": 0.25, "image": 0.25, "group": 1 / 6}
#: Relation word -> (row offset, column offset) of the first object relative to the second.
_RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (-1, 0), "below": (1, 0)}

Scorer = Callable[[torch.Tensor, list[str]], torch.Tensor]


@dataclass
class WinogroundSet:
    """P Winoground items of one world.

    kinds: P names from :data:`KINDS`.  captions: P pairs ``(caption_0, caption_1)``.
    images: (P, 2, 3, H, W) float32 in [0, 1]; ``images[p, c]`` is the image caption ``c`` is
    true of.  objects: P pairs of object lists (the ``compose`` dicts of the two scenes).
    """

    kinds: list[str]
    captions: list[tuple[str, str]]
    images: torch.Tensor
    objects: list[tuple[list[dict], list[dict]]]

    def __len__(self) -> int:
        return len(self.kinds)


def same_words(caption: str) -> list[str]:
    """The sorted words of a caption with "an" read as "a": the two captions of an item must give
    the same list (the article only agrees with the next word)."""
    return sorted("a" if w == "an" else w for w in caption.split())


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(colour: str, shape: str, size: str | None = None) -> str:
    words = ([size] if size else []) + [colour, shape]
    return f"{_article(words[0])} {' '.join(words)}"


def _binding(cfg, rng: random.Random, allowed) -> tuple[list, list, str, str]:
    while True:
        c1, c2 = rng.sample(cfg.colours, 2)
        s1, s2 = rng.sample(cfg.shapes, 2)
        if all(p in allowed for p in ((c1, s1), (c2, s2), (c2, s1), (c1, s2))):
            break
    cells = rng.sample(cfg.positions, 2)
    sizes = [rng.choice(cfg.sizes), rng.choice(cfg.sizes)]
    objs0 = [dict(shape=s1, colour=c1, size=sizes[0], position=cells[0]),
             dict(shape=s2, colour=c2, size=sizes[1], position=cells[1])]
    objs1 = [dict(o, colour=c) for o, c in zip(objs0, (c2, c1), strict=True)]
    return (objs0, objs1, f"{_phrase(c1, s1)} and {_phrase(c2, s2)}",
            f"{_phrase(c2, s1)} and {_phrase(c1, s2)}")


def _relation(cfg, rng: random.Random, allowed) -> tuple[list, list, str, str]:
    while True:
        c1, c2 = rng.sample(cfg.colours, 2)
        s1, s2 = rng.sample(cfg.shapes, 2)
        if (c1, s1) in allowed and (c2, s2) in allowed:
            break
    relation = rng.choice(tuple(_RELATIONS))
    dr, dc = _RELATIONS[relation]
    while True:   # cell of object a, then a cell of b on the right side of it
        ra, ca = rng.randrange(3), rng.randrange(3)
        steps = [k for k in (1, 2) if 0 <= ra - dr * k < 3 and 0 <= ca - dc * k < 3]
        if steps:
            k = rng.choice(steps)
            rb, cb = ra - dr * k, ca - dc * k
            break
    pa, pb = cfg.positions[3 * ra + ca], cfg.positions[3 * rb + cb]
    size = rng.choice(cfg.sizes)
    objs0 = [dict(shape=s1, colour=c1, size=size, position=pa),
             dict(shape=s2, colour=c2, size=size, position=pb)]
    objs1 = [dict(objs0[0], position=pb), dict(objs0[1], position=pa)]
    return (objs0, objs1, f"{_phrase(c1, s1, size)} {relation} {_phrase(c2, s2)}",
            f"{_phrase(c2, s2, size)} {relation} {_phrase(c1, s1)}")


def _count(cfg, rng: random.Random, allowed) -> tuple[list, list, str, str]:
    a, b = rng.sample(cfg.colours, 2)
    while True:
        shapes = [rng.choice(cfg.shapes) for _ in range(3)]
        if all((c, s) in allowed for s in shapes for c in (a, b)):
            break
    cells = rng.sample(cfg.positions, 3)
    sizes = [rng.choice(cfg.sizes) for _ in range(3)]
    objs0 = [dict(shape=s, colour=c, size=z, position=p)
             for s, c, z, p in zip(shapes, (a, b, b), sizes, cells, strict=True)]
    objs1 = [dict(o, colour=c) for o, c in zip(objs0, (b, a, a), strict=True)]
    return (objs0, objs1, f"one {a} object and two {b} objects",
            f"two {a} objects and one {b} object")


_MAKERS = {"binding": _binding, "relation": _relation, "count": _count}


def make_pairs(world, kind: str, n: int, seed: int = 0, include_heldout: bool = False
               ) -> WinogroundSet:
    """``n`` Winoground items of ``kind`` rendered by ``world.compose`` (hand-placed objects,
    each centred in its grid cell).

    world: a :class:`~vlm_course.world.ShapeWorld`; its canvas is the image size.
    kind: one of :data:`KINDS`.  seed: the same seed gives the same items.
    include_heldout: allow the world's held-out colour-shape pairs (default False: every
    composition shown is one the training split contains).
    Returns a :class:`WinogroundSet`.  Raises ValueError for an unknown ``kind``, ``n < 1`` or a
    world with fewer than 2 colours/shapes or 3 objects' room; TypeError for a non-world.
    """
    if not hasattr(world, "compose") or not hasattr(world, "cfg"):
        raise TypeError(f"world: expected a ShapeWorld, got {type(world).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    cfg = world.cfg
    held = set() if include_heldout else set(cfg.heldout)
    allowed = {p for p in cfg.compositions if p not in held}
    rng = random.Random(f"winoground-{kind}-{seed}")
    kinds, captions, images, objects = [], [], [], []
    for _ in range(n):
        objs0, objs1, cap0, cap1 = _MAKERS[kind](cfg, rng, allowed)
        if same_words(cap0) != same_words(cap1):   # cannot happen: a broken template
            raise RuntimeError(f"Winoground pair with different words: {cap0!r} / {cap1!r}")
        pair = [world.compose(o).images[0] for o in (objs0, objs1)]
        kinds.append(kind)
        captions.append((cap0, cap1))
        images.append(torch.stack(pair))
        objects.append((objs0, objs1))
    return WinogroundSet(kinds, captions, torch.stack(images), objects)


@torch.no_grad()
def score_pairs(scorer: Scorer, items: WinogroundSet, batch_size: int = 256) -> torch.Tensor:
    """All four scores of every item: (P, 2, 2) float, ``[p, c, i]`` = s(caption c, image i).

    scorer: ``scorer(images (B, 3, H, W), texts list[str]) -> (B,)`` scores of aligned pairs.
    Raises TypeError if ``scorer`` is not callable, ValueError if it returns the wrong shape.
    """
    if not callable(scorer):
        raise TypeError(f"scorer: expected a callable (images, texts) -> (B,), "
                        f"got {type(scorer).__name__}")
    P = len(items)
    images, texts = [], []
    for p in range(P):
        for c in range(2):
            for i in range(2):
                images.append(items.images[p, i])
                texts.append(items.captions[p][c])
    out = []
    for start in range(0, len(texts), batch_size):
        imgs = torch.stack(images[start:start + batch_size])
        s = scorer(imgs, texts[start:start + batch_size])
        if not torch.is_tensor(s) or tuple(s.shape) != (imgs.shape[0],):
            raise ValueError(f"scorer: expected a ({imgs.shape[0]},) tensor of scores, got "
                             f"{tuple(s.shape) if torch.is_tensor(s) else type(s).__name__}")
        out.append(s.detach().float().cpu())
    return torch.cat(out).view(P, 2, 2)


def winoground_scores(scores: torch.Tensor) -> dict[str, float]:
    """Text, image and group accuracy (Thrush et al. 2022) from (P, 2, 2) scores ``[p, c, i]``.

    text: s(c0, i0) > s(c1, i0) and s(c1, i1) > s(c0, i1) — each image prefers its caption;
    image: s(c0, i0) > s(c0, i1) and s(c1, i1) > s(c1, i0) — each caption prefers its image;
    group: both.  Ties count as wrong.  Returns floats in [0, 1] and ``"n"`` = P.
    Raises ValueError unless ``scores`` is a (P, 2, 2) tensor with P >= 1.
    """
    if not torch.is_tensor(scores) or scores.dim() != 3 or tuple(scores.shape[1:]) != (2, 2) \
            or scores.shape[0] == 0:
        raise ValueError(f"scores: expected a (P, 2, 2) tensor with P >= 1, got "
                         f"{tuple(scores.shape) if torch.is_tensor(scores) else type(scores)}")
    s = scores.float()
    text = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
    image = (s[:, 0, 0] > s[:, 0, 1]) & (s[:, 1, 1] > s[:, 1, 0])
    return {"text": float(text.float().mean()), "image": float(image.float().mean()),
            "group": float((text & image).float().mean()), "n": int(s.shape[0])}


def clip_scorer(model) -> Scorer:
    """A scorer from any model with the VLM interface: the cosine of ``encode_image`` and
    ``encode_text`` of each aligned pair (chapter 04's CLIP, a Hugging Face adapter, ...)."""
    for name in ("encode_image", "encode_text", "tokenize"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"model: expected the VLM interface (missing {name}), "
                            f"got {type(model).__name__}")

    @torch.no_grad()
    def score(images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        img = torch.nn.functional.normalize(model.encode_image(images).float(), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(model.tokenize(list(texts))).float(),
                                            dim=-1)
        return (img * txt).sum(-1)

    return score


def evaluate_winoground(scorer: Scorer, world, kinds: Sequence[str] = KINDS, n: int = 100,
                        seed: int = 0, batch_size: int = 256) -> dict[str, dict[str, float]]:
    """Winoground in miniature for one scorer: ``{kind: {"text", "image", "group", "n"}}``
    on ``n`` items of each kind built by :func:`make_pairs` (same ``seed``, same items)."""
    if isinstance(kinds, str):
        raise ValueError(f"kinds: expected a sequence of names from {KINDS}, got the str {kinds!r}")
    return {k: winoground_scores(score_pairs(scorer, make_pairs(world, k, n, seed), batch_size))
            for k in kinds}
