"""Is this caption true of this scene? ShapeWorld's caption checker (chapter 03; used again by
chapter 05 to check generated captions and chapter 06 for "which captions are true of which scene").

A caption is read with the grammar the caption templates use (``world/captions.py``):

* every noun phrase ("a small red circle", "the star ... is cyan") must match some object of the
  scene on every attribute it names (size, colour, shape);
* a count ("there are two objects", "two objects: ...") must equal the number of objects;
* "X in the <position>" needs an object like X in that grid cell;
* "X left of / right of / above / below Y" needs two different objects like X and Y in that
  relation (columns for left/right, rows for above/below, as the templates define them);
* "on a textured / black background" must match the background (checked when it is known);
* a caption that names neither an object nor a count says nothing about the scene: not true.

Phrases are read existentially: "a red circle left of a blue square" is true when *some* red circle
is left of *some* blue square.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from .captions import COUNT_WORDS, RELATIONS, parse_mentions
from .config import WorldConfig

_KEYS = ("shape", "colour", "size", "position", "row", "col")


def _matches(mention: dict, obj: dict) -> bool:
    return all(obj[key] == value for key, value in mention.items())


def _check(caption, objects, cfg) -> None:
    if not isinstance(caption, str):
        raise TypeError(f"caption: expected a str, got {type(caption).__name__}")
    if not isinstance(cfg, WorldConfig):
        raise TypeError(f"cfg: expected a WorldConfig, got {type(cfg).__name__}")
    if not isinstance(objects, Sequence) or not objects:
        raise ValueError(f"objects: expected a non-empty list of object dicts (SceneBatch.objects"
                         f"[b]), got {objects!r}")
    for k, obj in enumerate(objects):
        missing = [key for key in _KEYS if not isinstance(obj, dict) or key not in obj]
        if missing:
            raise ValueError(f"objects[{k}]: expected a dict with keys {_KEYS}, missing {missing}")


def caption_problems(caption: str, objects: Sequence[dict], cfg: WorldConfig,
                     textured: bool | None = None) -> list[str]:
    """The reasons ``caption`` is not true of a scene (an empty list when it is true).

    caption: one caption in the templates' grammar (see the module docstring).
    objects: the scene's objects, ``SceneBatch.objects[b]`` (dicts with "shape", "colour", "size",
        "position", "row", "col").
    cfg: the world (its vocabulary is used to read the caption).
    textured: the scene's background (``SceneBatch.textured[b]``); None skips the background check.
    Raises TypeError for a non-str caption or a cfg that is not a WorldConfig, ValueError for an
    empty ``objects`` or an object dict that lacks one of those keys.
    """
    _check(caption, objects, cfg)
    problems = []
    mentions = parse_mentions(caption, cfg)
    words = re.findall(r"[a-z]+", caption.lower())
    counted = [w for w in words if w in COUNT_WORDS]
    if not mentions and not counted:
        problems.append("neither an object nor a count mentioned")
    for m in mentions:
        if not any(_matches(m, o) for o in objects):
            problems.append(f"no object matches {m}")
    if counted and COUNT_WORDS.index(counted[0]) != len(objects):
        problems.append(f"count {counted[0]} but {len(objects)} objects")
    for pos in cfg.positions:
        if f"in the {pos}" in caption:
            before = parse_mentions(caption.split(f" in the {pos}")[0], cfg)
            m = before[-1] if before else {}
            if not any(_matches(m, o) and o["position"] == pos for o in objects):
                problems.append(f"nothing like {m} in the {pos}")
    for rel in RELATIONS:
        hit = re.search(rf"^(.*) {rel} (.*)$", caption)
        if hit and " in the " not in caption:
            left, right = parse_mentions(hit.group(1), cfg), parse_mentions(hit.group(2), cfg)
            a, b = (left[-1] if left else {}), (right[0] if right else {})
            ok = any(
                {"left of": oa["col"] < ob["col"], "right of": oa["col"] > ob["col"],
                 "above": oa["row"] < ob["row"], "below": oa["row"] > ob["row"]}[rel]
                for oa in objects for ob in objects
                if oa is not ob and _matches(a, oa) and _matches(b, ob)
            )
            if not ok:
                problems.append(f"relation {rel!r} false")
    if textured is not None:
        if "textured background" in caption and not textured:
            problems.append("says textured background, the background is black")
        if "black background" in caption and textured:
            problems.append("says black background, the background is textured")
    return problems


def caption_is_true(caption: str, objects: Sequence[dict], cfg: WorldConfig,
                    textured: bool | None = None) -> bool:
    """True when ``caption`` is true of the scene: ``caption_problems(...) == []`` (same arguments
    and errors)."""
    return not caption_problems(caption, objects, cfg, textured)


def truth_matrix(captions: Sequence[str], batch, cfg: WorldConfig) -> torch.Tensor:
    """Which captions are true of which scene: (M, B) bool, True where caption m is true of scene b.

    captions: M strings; batch: a ``SceneBatch`` of B scenes (its ``objects`` and ``textured``);
    cfg: the batch's world. The matrix is the ``text_to_image`` argument that
    ``evaluation.retrieval.recall_at_k`` accepts when one sentence describes several images.
    Raises TypeError when ``captions`` is a single str or holds a non-str, and as
    :func:`caption_problems` for the scenes.
    """
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(f"captions: expected a list of str, got {type(captions).__name__}")
    textured = [bool(t) for t in batch.textured] if len(batch.textured) else [None] * len(batch)
    out = torch.zeros(len(captions), len(batch.objects), dtype=torch.bool)
    for m, cap in enumerate(captions):
        for b, objs in enumerate(batch.objects):
            out[m, b] = caption_is_true(cap, objs, cfg, textured[b])
    return out
