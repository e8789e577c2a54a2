"""Checks for chapter 03's exercises (datasets): held-out pairs, binding, noise, split design.

Ground truth comes from ShapeWorld itself (its config and its scenes), never typed in.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number, same_set

__all__ = ["check_star_colours", "check_bag_of_words", "check_noisy_words", "check_split_scenes"]


def check_star_colours(answer, cfg=None) -> Verdict:
    """Exercise 1: the colours that appear with "star" in the training split of ``cfg``
    (a WorldConfig; default: ``WorldConfig()``), as a list or set of colour names."""
    from vlm_course.world import WorldConfig

    cfg = WorldConfig() if cfg is None else cfg
    truth = [c for c in cfg.colours if (c, "star") not in cfg.heldout]
    return same_set(
        answer, truth,
        hint="cfg.heldout lists the (colour, shape) pairs that training never shows; keep the "
             "colours of cfg.colours whose pair with 'star' is not among them.",
        praise=f"{len(truth)} of {len(cfg.colours)} colours. Every colour and every shape still "
               "appears in training, each with 7 partners — only the combination is new at test "
               "time, which is what makes a held-out pair a test of composition.")


def check_bag_of_words(answer) -> Verdict:
    """Exercise 2: the caption pair that a bag-of-words model cannot tell apart."""
    return choice(
        answer, "a", "abc",
        hint="write each caption of a pair as a multiset of words: which pair gives the same "
             "multiset twice?",
        praise="'a red star and a blue circle' and 'a blue star and a red circle' have the same "
               "words, so only a model that binds each colour to its object separates them. "
               "Relations ('a small red circle left of a blue square'), position templates ('the "
               "large star in the top left is cyan') and multi-object lists all need that "
               "binding, and the held-out pairs (e.g. 'red triangle', whose colour and shape "
               "training shows only apart) test exactly it.")


def _word_noise(cfg, n: int = 300) -> float:
    """Fraction of caption words that caption noise replaced, over n training scenes."""
    from vlm_course.world import ShapeWorld

    batch = ShapeWorld(cfg).batch("train", range(n), masks=False)
    words = sum(len(c.split()) for caps in batch.captions for c in caps)
    return sum(len(r) for r in batch.caption_noise) / words


def check_noisy_words(answer) -> Verdict:
    """Exercise 3: the fraction of caption *words* that are wrong at ``caption_noise=0.5``
    (measured on the chapter's world, ``WorldConfig(background="mixed")``), within 0.02."""
    from vlm_course.world import WorldConfig

    hint = ("each noise record (batch.caption_noise) is one replaced word: divide the number of "
            "records by the number of words of all captions (caption.split()), over a few hundred "
            "scenes of a world with caption_noise=0.5.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    truth = _word_noise(WorldConfig(background="mixed", caption_noise=0.5))
    return number(answer, truth, hint, tol=0.02, praise=(
        f"about {truth:.0%} of the words. At most one word of a noisy caption is replaced, and "
        "captions have 5-10 words, so about half the captions but only ~0.5/7 of the words are "
        "wrong: the rest of each noisy caption is still true, which is one reason contrastive "
        "training survives a lot of noise."))


def check_split_scenes(answer) -> Verdict:
    """Exercise 4: is scene 17 of "test" the same as scene 17 of "train"? (True or False)"""
    from vlm_course.world import ShapeWorld

    hint = ("render world.batch('test', [17]) and world.batch('train', [17]) and compare the "
            "images (torch.equal); answer True or False.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    if not isinstance(answer, bool):
        return verdict(False, f"expected True or False, got {answer!r}. " + hint)
    world = ShapeWorld()
    truth = bool((world.images("test", [17]) == world.images("train", [17])).all())
    return verdict(answer == truth, hint, praise=(
        "They differ: the split name is part of the hash that seeds each scene, so the splits "
        "are independent draws. If indices were shared, the test set would contain copies of "
        "training scenes and test accuracy would measure memorisation."))
