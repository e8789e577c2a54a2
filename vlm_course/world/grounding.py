"""Which captions are true of which scenes, and which words describe which objects.

Chapter 06 (alignment objectives) needs both, in bulk: hard-negative sampling must never draw a
caption that is true of the image (a B x C truth table every training step), and region-word
alignment is trained on phrase grounding (each colour, shape or size word -> its object).

:mod:`vlm_course.world.truth` is the reference checker (one caption, one scene, every claim read
from the text each time).  Here a caption is parsed once into a :class:`CaptionParse` (its noun
phrases, count, "in the <cell>" claims and relation) and then checked against any number of scenes,
about fifty times faster — fast enough for every training step.  The claims are those of
:func:`vlm_course.world.truth.caption_is_true`, except the background, which is not checked, and
one refinement: in "the small circle in the top left is red" the colour belongs to the located
circle (the reference only asks that *some* small red circle exist).
``tests/test_world_grounding.py`` checks that the two agree on thousands of caption-scene pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .captions import COUNT_WORDS, RELATIONS
from .config import WorldConfig

__all__ = ["CaptionParse", "parse_caption", "parse_holds", "caption_truth", "word_groundings",
           "grid_regions", "grounding_targets"]

_WORD = re.compile(r"[a-z0-9]+|[,.:;!?]")   # the course tokenizer's split


@dataclass(frozen=True)
class CaptionParse:
    """A caption's claims.  words: its lower-case words (as the tokenizer splits them);
    mentions: noun phrases as attribute dicts; phrase_of_word: for each word the index of the
    mention it belongs to (or -1); count: number of objects claimed (or None); located:
    (mention index, cell name) pairs; relation: (mention a, relation, mention b) or None."""

    words: tuple[str, ...]
    mentions: tuple[dict, ...]
    phrase_of_word: tuple[int, ...]
    count: int | None
    located: tuple[tuple[int, str], ...]
    relation: tuple[int, str, int] | None


def parse_caption(caption: str, cfg: WorldConfig) -> CaptionParse:
    """Parse a ShapeWorld caption (see the module docstring).  Raises TypeError for a non-str."""
    if not isinstance(caption, str):
        raise TypeError(f"caption: expected a str, got {type(caption).__name__}")
    words = _WORD.findall(caption.lower())
    mentions: list[dict] = []
    phrase = [-1] * len(words)
    pending: dict = {}
    pending_words: list[int] = []
    for i, w in enumerate(words):
        if w in cfg.sizes or w in cfg.colours:
            key = "size" if w in cfg.sizes else "colour"
            if key == "colour" and i and words[i - 1] == "is" and mentions \
                    and "colour" not in mentions[-1]:
                mentions[-1]["colour"] = w          # "the large circle in the centre is red"
                phrase[i] = len(mentions) - 1
            else:
                pending[key] = w
                pending_words.append(i)
        elif w in cfg.shapes:
            pending["shape"] = w
            mentions.append(pending)
            for j in pending_words + [i]:
                phrase[j] = len(mentions) - 1
            pending, pending_words = {}, []
    count = next((COUNT_WORDS.index(w) for w in words if w in COUNT_WORDS), None)
    text = " ".join(words)
    located = []
    for pos in cfg.positions:
        for hit in re.finditer(rf"\bin the {pos}\b", text):
            before = len(text[:hit.start()].split())
            owner = max((phrase[j] for j in range(before) if phrase[j] >= 0), default=-1)
            if owner >= 0:
                located.append((owner, pos))
    relation = None
    if not located:
        for rel in RELATIONS:
            hit = re.search(rf"\b{rel}\b", text)
            if hit:
                cut = len(text[:hit.start()].split())
                a = max((phrase[j] for j in range(cut) if phrase[j] >= 0), default=-1)
                b = min((phrase[j] for j in range(cut, len(words)) if phrase[j] >= 0), default=-1)
                if a >= 0 and b >= 0:
                    relation = (a, rel, b)
                break
    return CaptionParse(tuple(words), tuple(mentions), tuple(phrase), count, tuple(located),
                        relation)


def _like(mention: dict, obj: dict) -> bool:
    return all(obj[key] == value for key, value in mention.items())


_HOLDS = {"left of": lambda a, b: a["col"] < b["col"], "right of": lambda a, b: a["col"] > b["col"],
          "above": lambda a, b: a["row"] < b["row"], "below": lambda a, b: a["row"] > b["row"]}


def parse_holds(parse: CaptionParse, objects: list[dict]) -> bool:
    """Whether a parsed caption is true of a scene given as its object dicts (``SceneBatch.objects``
    row; each needs shape, colour, size, position, row, col)."""
    if parse.count is not None and parse.count != len(objects):
        return False
    if not all(any(_like(m, o) for o in objects) for m in parse.mentions):
        return False
    for k, pos in parse.located:
        if not any(_like(parse.mentions[k], o) and o["position"] == pos for o in objects):
            return False
    if parse.relation is not None:
        a, rel, b = parse.relation
        ma, mb = parse.mentions[a], parse.mentions[b]
        if not any(oa is not ob and _like(ma, oa) and _like(mb, ob) and _HOLDS[rel](oa, ob)
                   for oa in objects for ob in objects):
            return False
    return True


def caption_truth(captions: list[str], objects: list[list[dict]], cfg: WorldConfig
                  ) -> torch.Tensor:
    """(B, C) bool: ``[b, c]`` is True when caption ``c`` is true of scene ``b`` (scenes first,
    the layout of in-batch similarity logits; :func:`vlm_course.world.truth.truth_matrix` is its
    slow, transposed reference).

    captions: C strings; objects: B scenes' object lists (``SceneBatch.objects``).  Each caption
    is parsed once.  Raises TypeError for a str instead of a list.
    """
    if isinstance(captions, str) or isinstance(objects, dict):
        raise TypeError("captions and objects: expected a list of captions and a list of scenes' "
                        "object lists")
    parses = [parse_caption(c, cfg) for c in captions]
    return torch.tensor([[parse_holds(p, objs) for p in parses] for objs in objects],
                        dtype=torch.bool).reshape(len(objects), len(captions))


def word_groundings(caption: str, objects: list[dict], cfg: WorldConfig) -> list[list[int]]:
    """Phrase grounding: for each word of ``caption`` (the tokenizer's split, without [SOS]/[EOS])
    the indices of the objects it describes — every object that matches the word's whole noun
    phrase, for a colour, shape or size word; ``[]`` for any other word."""
    parse = parse_caption(caption, cfg)
    matches = [[k for k, o in enumerate(objects) if _like(m, o)] for m in parse.mentions]
    return [matches[p] if p >= 0 else [] for p in parse.phrase_of_word]


def grid_regions(objects: list[list[dict]], canvas: int) -> torch.Tensor:
    """Nine region proposals per scene, (B, 9, 4) float xyxy pixels: region k is the object in
    grid cell k (its ground-truth box) or, for an empty cell, the cell itself (a background
    proposal).  Region k of every scene is grid cell k, so targets and heat maps line up.
    ``objects``: ``SceneBatch.objects`` of a batch rendered with ``masks=True`` (boxes present).
    Raises ValueError when an object has no box.
    """
    side = canvas / 3.0
    cells = torch.arange(9)
    x0, y0 = (cells % 3) * side, (cells // 3) * side
    base = torch.stack([x0, y0, x0 + side, y0 + side], dim=1).float()      # (9, 4)
    out = base.repeat(len(objects), 1, 1)                                  # (B, 9, 4)
    for b, objs in enumerate(objects):
        for o in objs:
            if o.get("box") is None:
                raise ValueError("objects: expected object boxes (render with masks=True), got "
                                 "an object without 'box'")
            out[b, o["cell"]] = torch.tensor(o["box"], dtype=torch.float32)
    return out


def grounding_targets(captions: list[str], objects: list[list[dict]], cfg: WorldConfig,
                      context_length: int, offset: int = 1) -> torch.Tensor:
    """Phrase-grounding targets for :func:`grid_regions`: (B, 9, L) bool, ``[b, k, l]`` True when
    token ``l`` of caption ``b`` (word ``l - offset``; ``offset=1`` skips the tokenizer's [SOS])
    describes the object in grid cell ``k`` of scene ``b``.  Words past ``context_length`` are
    dropped.  Raises ValueError when captions and scenes differ in number.
    """
    if isinstance(captions, str) or len(captions) != len(objects):
        raise ValueError(f"captions: expected one caption per scene ({len(objects)}), got "
                         f"{1 if isinstance(captions, str) else len(captions)}")
    out = torch.zeros(len(captions), 9, context_length, dtype=torch.bool)
    for b, (caption, objs) in enumerate(zip(captions, objects, strict=True)):
        for w, owners in enumerate(word_groundings(caption, objs, cfg)):
            if w + offset < context_length:
                for k in owners:
                    out[b, objs[k]["cell"], w + offset] = True
    return out
