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


def _candidates(objects: list[dict], textured: bool, rng: random.Random) -> list[list[list[Word]]]:
    """Caption candidates grouped by kind: attributes, position, count/list, relation,
    background."""
    o = objects[0]
    n = len(objects)
    other = rng.randrange(n)
    attribute = [
        _phrase(o, 0, "sc"),
        _plain("a photo of") + _phrase(o, 0, "sc"),
        _phrase(o, 0, "s") + _plain("that is") + [(o["colour"], ("colour", 0))],
    ]
    position = [
        _phrase(o, 0, "c") + _plain(f"in the {o['position']}"),
        _plain("the") + _phrase(objects[other], other, "s")[1:]
        + _plain(f"in the {objects[other]['position']} is") + [(objects[other]["colour"],
                                                                  ("colour", other))],
    ]
    noun = "object" if n == 1 else "objects"
    verb = "is" if n == 1 else "are"
    listing: list[Word] = []
    for k, obj in enumerate(objects):
        if k:
            listing += [(",", None)] if k < n - 1 else _plain("and")
        listing += _phrase(obj, k, "c")
    count = [
        _plain(f"there {verb} {COUNT_WORDS[n]} {noun}"),
        _plain(f"{COUNT_WORDS[n]} {noun} :") + listing if n > 1 else
        _plain("one object :") + _phrase(o, 0, "sc"),
        listing if n > 1 else _plain("a scene showing") + _phrase(o, 0, "c"),
    ]
    relation = []
    if n >= 2:
        for a, b in ((0, 1), (1, 0)) + (((0, 2), (2, 1)) if n >= 3 else ()):
            rel = _relation(objects[a], objects[b], rng)
            relation.append(_phrase(objects[a], a, "sc") + _plain(rel)
                            + _phrase(objects[b], b, "c"))
    bg = "a textured background" if textured else "a black background"
    backdrop = [
        _phrase(o, 0, "sc") + _plain(f"on {bg}"),
        _plain("a picture of") + _phrase(o, 0, "c") + _plain(f"in the {o['position']}"),
    ]
    return [attribute, position, count, relation, backdrop]


_AN = re.compile(r"\ba (?=[aeiou])")


def fix_articles(text: str) -> str:
    """The article agrees with the next word: "a" becomes "an" before a vowel.

    "a photo of a orange" -> "a photo of an orange".  The one place the course applies this rule:
    ShapeWorld captions, zero-shot prompts (:meth:`ShapeWorld.prompts`) and the real-data captions
    of :mod:`vlm_course.datasets` all call it.  Raises ``TypeError`` if ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _AN.sub("an ", text)


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
