"""Captions of ShapeWorld scenes: templates, caption noise, and a phrase parser for checking them.

Chapter 03 (datasets). Web image-text data pairs each image with several loose descriptions (COCO
has five per image); ShapeWorld writes at least five true captions per scene from several
templates: attribute phrases ("a large red circle"), positions ("a red circle in the top left"),
counts ("there are two objects"), lists, relations ("a small red circle left of a blue square"),
and the background ("... on a textured background").

Caption noise (the "noisy web data" lesson): with probability ``cfg.caption_noise`` a caption gets
one attribute word (a colour, shape or size of one object) replaced by a wrong one. Each change is
recorded as ``{"caption": i, "object": k, "kind": "colour", "true": "red", "noisy": "blue"}``.
In train and val a replacement never creates a held-out colour-shape pair.
"""

from __future__ import annotations

import random
import re

from vlm_course.text.articles import fix_articles

from .config import POSITION_NAMES, SIZE_NAMES, WorldConfig

COUNT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RELATIONS = ("left of", "right of", "above", "below")
#: Words the templates use besides the vocabulary, counts, positions and relations.
TEMPLATE_WORDS = (
    "a", "an", "the", "photo", "picture", "of", "in", "on", "and", "there", "is", "are", "object",
    "objects", "shape", "shapes", "that", "with", "black", "textured", "background", "scene",
    "showing",
)

Word = tuple[str, tuple | None]  # (text, tag); tag = (kind, object) for an attribute word


def _article() -> Word:
    return ("a", ("article", -1))


def _phrase(obj: dict, k: int, parts: str) -> list[Word]:
    """Noun phrase for object k: parts is a string of s(ize), c(olour) letters before the shape."""
    words: list[Word] = [_article()]
    if "s" in parts:
        words.append((obj["size"], ("size", k)))
    if "c" in parts:
        words.append((obj["colour"], ("colour", k)))
    words.append((obj["shape"], ("shape", k)))
    return words


def _plain(text: str) -> list[Word]:
    return [(w, None) for w in text.split()]


def _relation(a: dict, b: dict, rng: random.Random) -> str:
    """A true spatial relation of object a to object b (they are in different grid cells)."""
    options = []
    if a["col"] < b["col"]:
        options.append("left of")
    if a["col"] > b["col"]:
        options.append("right of")
    if a["row"] < b["row"]:
        options.append("above")
    if a["row"] > b["row"]:
        options.append("below")
    return rng.choice(options)


#: Relation candidates, as (object a, object b) pairs: 2 with two objects, 4 with three or more.
_PAIRS = ((0, 1), (1, 0), (0, 2), (2, 1))
#: Caption kinds, in the order :func:`make_captions` takes one of each.
KINDS = ("attribute", "position", "count", "relation", "background")


def _group_sizes(n: int) -> tuple[int, ...]:
    """Number of candidates of each kind (:data:`KINDS`) for a scene of ``n`` objects."""
    return (3, 2, 3, 0 if n < 2 else 2 if n == 2 else 4, 2)


def _draws(objects: list[dict], rng: random.Random) -> tuple[int, list[str]]:
    """The random parts of the candidates: which object the second position caption names, and
    one true relation per pair of :data:`_PAIRS` (drawn in this order, as always)."""
    n = len(objects)
    other = rng.randrange(n)
    rels = [_relation(objects[a], objects[b], rng) for a, b in _PAIRS[:_group_sizes(n)[3]]]
    return other, rels


def _candidate(objects: list[dict], textured: bool, kind: int, j: int, other: int,
               rels: list[str]) -> list[Word]:
    """Candidate ``j`` of kind ``KINDS[kind]`` as tagged words (see :func:`_candidates`)."""
    o = objects[0]
    n = len(objects)
    if kind == 0:
        return [_phrase(o, 0, "sc"), _plain("a photo of") + _phrase(o, 0, "sc"),
                _phrase(o, 0, "s") + _plain("that is") + [(o["colour"], ("colour", 0))]][j]
    if kind == 1:
        if j == 0:
            return _phrase(o, 0, "c") + _plain(f"in the {o['position']}")
        obj = objects[other]
        return (_plain("the") + _phrase(obj, other, "s")[1:]
                + _plain(f"in the {obj['position']} is") + [(obj["colour"], ("colour", other))])
    if kind == 2:
        noun = "object" if n == 1 else "objects"
        if j == 0:
            return _plain(f"there {'is' if n == 1 else 'are'} {COUNT_WORDS[n]} {noun}")
        if n == 1:
            return (_plain("one object :") + _phrase(o, 0, "sc") if j == 1 else
                    _plain("a scene showing") + _phrase(o, 0, "c"))
        listing: list[Word] = []
        for k, obj in enumerate(objects):
            if k:
                listing += [(",", None)] if k < n - 1 else _plain("and")
            listing += _phrase(obj, k, "c")
        return _plain(f"{COUNT_WORDS[n]} {noun} :") + listing if j == 1 else listing
    if kind == 3:
        a, b = _PAIRS[j]
        return _phrase(objects[a], a, "sc") + _plain(rels[j]) + _phrase(objects[b], b, "c")
    if j == 0:
        bg = "a textured background" if textured else "a black background"
        return _phrase(o, 0, "sc") + _plain(f"on {bg}")
    return _plain("a picture of") + _phrase(o, 0, "c") + _plain(f"in the {o['position']}")


def _candidates(objects: list[dict], textured: bool, rng: random.Random) -> list[list[list[Word]]]:
    """Caption candidates grouped by kind: attributes, position, count/list, relation,
    background (:data:`KINDS`).  With one or two objects no two candidates render to the same
    text; with three, two relation candidates occasionally do (see :func:`one_caption`)."""
    other, rels = _draws(objects, rng)
    return [[_candidate(objects, textured, kind, j, other, rels) for j in range(size)]
            for kind, size in enumerate(_group_sizes(len(objects)))]


def render_words(words: list[Word]) -> str:
    """Join words into a caption: articles agree with the next word ("an orange ..."), commas
    attach."""
    text = fix_articles(" ".join([w for w, _ in words]))
    return text.replace(" ,", ",").replace(" :", ":")


def make_captions(objects: list[dict], textured: bool, cfg: WorldConfig, rng: random.Random,
                  closed: bool) -> tuple[list[str], list[dict]]:
    """``cfg.n_captions`` distinct captions of one scene and the list of noise records.

    One caption from each kind (attributes, position, count, relation when there are two or more
    objects, background) comes first; the rest are drawn from the remaining candidates. ``closed``
    (train/val) forbids noise that would spell a held-out colour-shape pair.
    """
    groups = _candidates(objects, textured, rng)
    chosen: list[list[Word]] = []
    texts: list[str] = []

    def take(words: list[Word]) -> None:
        text = render_words(words)
        if text not in texts:
            texts.append(text)
            chosen.append(words)

    for group in groups:
        if group:
            take(group[rng.randrange(len(group))])
    if len(chosen) < cfg.n_captions:
        rest = [c for g in groups for c in g]
        rng.shuffle(rest)
        for words in rest:
            if len(chosen) >= cfg.n_captions:
                break
            take(words)
    del chosen[cfg.n_captions:], texts[cfg.n_captions:]
    noise: list[dict] = []
    for i, words in enumerate(chosen):
        if rng.random() < cfg.caption_noise:
            words = list(words)  # candidates may share word lists; corrupt a copy
            record = _corrupt(words, objects, cfg, rng, closed)
            if record is not None:
                noise.append({"caption": i, **record})
                texts[i] = render_words(words)
    return texts, noise


def _corrupt(words: list[Word], objects: list[dict], cfg: WorldConfig, rng: random.Random,
             closed: bool) -> dict | None:
    """Replace one attribute word of ``words`` in place by a wrong value; return the record."""
    slots = [i for i, (_, tag) in enumerate(words) if tag is not None and tag[0] != "article"]
    if not slots:
        return None
    i = rng.choice(slots)
    true, (kind, k) = words[i]
    vocab = {"colour": cfg.colours, "shape": cfg.shapes, "size": cfg.sizes}[kind]
    held = set(cfg.heldout) if closed else set()
    obj = objects[k]
    options = [
        v for v in vocab if v != true
        and not (kind == "colour" and (v, obj["shape"]) in held)
        and not (kind == "shape" and (obj["colour"], v) in held)
    ]
    noisy = rng.choice(options)
    words[i] = (noisy, (kind, k))
    return {"object": k, "kind": kind, "true": true, "noisy": noisy}


def caption_vocabulary(cfg: WorldConfig) -> list[str]:
    """Every word a ShapeWorld caption of ``cfg`` can contain (sorted), plus ',' and ':'."""
    words = set(TEMPLATE_WORDS) | set(cfg.shapes) | set(cfg.colours) | set(SIZE_NAMES)
    words |= set(COUNT_WORDS) | {w for p in POSITION_NAMES for w in p.split()}
    words |= {w for r in RELATIONS for w in r.split()} | {",", ":"}
    words.discard("")
    return sorted(words)


_WORD = re.compile(r"[a-z]+")


def parse_mentions(caption: str, cfg: WorldConfig) -> list[dict]:
    """Noun phrases of a caption as attribute dicts, e.g. "a small red circle left of a star" ->
    ``[{"size": "small", "colour": "red", "shape": "circle"}, {"shape": "star"}]``.

    A phrase collects the size and colour words since the previous shape word and ends at a shape
    word; a colour after "is" ("the circle in the centre is red") belongs to the previous phrase.
    Used by the tests and chapter 03 to check that captions are true of their scene.
    """
    words = _WORD.findall(caption.lower())
    mentions: list[dict] = []
    pending: dict = {}
    for i, w in enumerate(words):
        if w in cfg.sizes:
            pending["size"] = w
        elif w in cfg.colours:
            if i > 0 and words[i - 1] == "is" and mentions and "colour" not in mentions[-1]:
                mentions[-1]["colour"] = w
            else:
                pending["colour"] = w
        elif w in cfg.shapes:
            pending["shape"] = w
            mentions.append(pending)
            pending = {}
    return mentions


def one_caption(objects: list[dict], textured: bool, cfg: WorldConfig, rng: random.Random,
                closed: bool) -> tuple[str, dict | None]:
    """One caption of a scene, distributed like a uniform pick among the ``cfg.n_captions``
    captions of :func:`make_captions`, while building only that one.

    The pre-training stream needs one caption per scene; building all of them and throwing all but
    one away took most of a batch's time.  Why the distributions agree: ``make_captions`` fills
    slots ``0 .. k-1`` with one uniformly chosen candidate of each of the ``k`` non-empty kinds and
    the remaining slots with a uniformly shuffled sample of the other ``N - k`` candidates.  A
    uniform slot is therefore, with probability ``k / n``, a uniform kind's uniform candidate and
    otherwise a uniform candidate among those not picked for their kind; noise then hits it with
    probability ``cfg.caption_noise``, as it hits every slot.  This is exact when the scene's
    candidates render to distinct texts, which holds for every scene of one or two objects; with
    three or more, two relation captions coincide in about 1% of scenes (two objects with the same
    colour and shape), and there ``make_captions`` drops the copy while this function keeps that
    text's double weight.  Returns ``(caption, noise record or None)``; the record's
    ``"caption"`` is 0.  ``tests/test_world_pairs.py`` compares the two distributions.
    """
    def uniform(n: int) -> int:          # rng.random() is ~5x faster than rng.randrange
        return min(int(rng.random() * n), n - 1)

    n = len(objects)
    sizes = _group_sizes(n)
    kinds = [g for g, size in enumerate(sizes) if size]
    slot = uniform(cfg.n_captions)
    if slot < len(kinds):                       # the slot of one kind: a uniform candidate of it
        kind = kinds[slot]
    else:               # a later slot: a uniform candidate among those not picked for their kind's
        spare = [sizes[g] - 1 for g in kinds]   # slot; kind g has sizes[g] - 1 of them, and by
        r = uniform(sum(spare))                 # symmetry each of its candidates is equally likely
        kind = kinds[-1]                        # to be among them
        for g, count in zip(kinds, spare, strict=True):
            if r < count:
                kind = g
                break
            r -= count
    j = uniform(sizes[kind])
    other = uniform(n) if (kind, j) == (1, 1) else 0
    rels = ([_relation(objects[a], objects[b], rng) for a, b in _PAIRS[:sizes[3]]] if kind == 3
            else [])
    words = _candidate(objects, textured, kind, j, other, rels)
    record = None
    if rng.random() < cfg.caption_noise:
        words = list(words)
        record = _corrupt(words, objects, cfg, rng, closed)
        if record is not None:
            record = {"caption": 0, **record}
    return render_words(words), record
