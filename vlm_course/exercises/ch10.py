"""Checks for chapter 10's exercises (transfer learning: CoOp, Tip-Adapter, LoRA).

Parameter counts and the CoOp/zero-shot identity are computed by building the methods from the
package on the shipped tiny CLIP and the shape classes of its world. Importing this module does
not import torch.
"""

from __future__ import annotations

from functools import lru_cache

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_coop_two_words", "check_class_specific", "check_tip_knobs",
           "check_clean_headroom", "check_lora_params"]

NAME = "clip_tiny_shapeworld"


@lru_cache(maxsize=1)
def _clip_and_classes():
    """The shipped tiny CLIP (frozen: the methods never change it) and the shape class names of
    its world (chapter 10's task), loaded once."""
    from vlm_course import pretrained
    from vlm_course.evaluation.shapeworld_report import world_config_from_card

    clip = pretrained.load(NAME, device="cpu")
    return clip, tuple(world_config_from_card(pretrained.card(NAME)).shapes)


@lru_cache(maxsize=1)
def _coop_gap() -> float:
    """Largest |CoOp(n_ctx=2, init="a photo") - zero-shot "a photo {}."| logit on 16 random unit
    features (computed once)."""
    import torch

    from vlm_course.transfer.prompt_tuning import CoOp, CoOpConfig

    clip, classes = _clip_and_classes()
    coop = CoOp(clip, classes, CoOpConfig(n_ctx=2, init="a photo"))
    generator = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(
        torch.randn(16, clip.config.embed_dim, generator=generator), dim=-1)
    with torch.no_grad():
        prompts = clip.encode_text(clip.tokenize([f"a photo {c}." for c in classes]))
        return float((coop.logits_from_features(features)
                      - clip.logit_scale.exp() * features @ prompts.T).abs().max())


def check_coop_two_words(answer) -> Verdict:
    """Exercise 1: the largest |difference| between CoOp(n_ctx=2, init="a photo") and zero-shot
    with the template "a photo {}."."""
    gap = _coop_gap()
    return number(
        answer, gap, tol=1e-6,
        hint="build CoOp with the two-word context and compare its logits_from_features with "
             "scale * features @ text.T for the hand-written prompts on the same features "
             "(the chapter's cell for four words shows how).",
        praise="the context vectors are the embeddings of \"a photo\", so CoOp's prompt is the "
               "same token sequence as the hand-written one: the logits agree bit for bit. "
               "Fitted at 16 shots (protocol.FIT[\"CoOp\"]), two vectors did as well as four when "
               "the chapter was written (0.939 against 0.938 on average over seeds 0-2): half the "
               "context loses nothing on this task.")


def check_class_specific(answer) -> Verdict:
    """Exercise 2: trainable numbers of a class-specific CoOp with four vectors per class."""
    from vlm_course.transfer.fit import count_trainable
    from vlm_course.transfer.prompt_tuning import CoOp, CoOpConfig

    clip, classes = _clip_and_classes()
    target = count_trainable(CoOp(clip, classes, CoOpConfig(class_specific=True)))
    unified = count_trainable(CoOp(clip, classes, CoOpConfig()))
    return number(
        answer, target,
        hint="every class gets its own n_ctx context vectors, each as wide as the text encoder's "
             "token embedding; count_trainable(method) confirms your count.",
        praise=f"{target:,} numbers, against {unified:,} for the unified context. The context "
               "of class k is only ever trained together with the name of class k, so a new "
               "class has no context of its own: a class-specific CoOp cannot be moved to new "
               "classes (set_classnames refuses).")


def check_tip_knobs(answer) -> Verdict:
    """Exercise 3: what alpha -> 0 and beta -> infinity turn Tip-Adapter into."""
    return choice(
        answer, "a", ("a", "b", "c"),
        hint="write out Tip-Adapter's logits: alpha multiplies the cache term; beta sits in "
             "exp(-beta (1 - cos)). What is left when the first vanishes, and which cosines "
             "keep exp(-beta (1 - cos)) away from zero when beta grows?",
        praise="alpha -> 0 removes the cache: zero-shot CLIP (tested in "
               "tests/test_transfer_methods.py). beta -> infinity makes every affinity vanish "
               "except an exact match (cos = 1), so the cache only recalls its own training "
               "images and the model falls back to zero-shot everywhere else.")


def check_clean_headroom(answer) -> Verdict:
    """Exercise 4: how much a transfer method can gain on clean (pre-training domain) images."""
    return choice(
        answer, "a", ("a", "b", "c"),
        hint="look at zero-shot accuracy on the clean test images (zs_clean): how far is it "
             "from 1?",
        praise="on clean images zero-shot is already close to perfect, so no method can gain "
               "more than a few points. Transfer learning pays where the task and the "
               "pre-training differ: the grain, a domain the model never saw.")


@lru_cache(maxsize=4)
def _lora_counts(ranks: tuple[int, ...]) -> list[int]:
    """Trainable numbers of LoRA (q and v of the image tower) at each rank, counted once."""
    from vlm_course.transfer.fit import count_trainable
    from vlm_course.transfer.lora import LoRA, LoRAConfig

    clip, classes = _clip_and_classes()
    return [count_trainable(LoRA(clip, classes, LoRAConfig(rank=r))) for r in ranks]


def check_lora_params(answer) -> Verdict:
    """Exercise 5: LoRA's trainable numbers on q and v of the image tower, for r = 1, 4, 16,
    as a list ``[n(1), n(4), n(16)]`` (or a dict ``{1: n(1), 4: ..., 16: ...}``)."""
    ranks = (1, 4, 16)
    target = _lora_counts(ranks)
    hint = ("each adapted (out x in) projection gets A (r x in) and B (out x r); count the "
            "adapted projections (q and v in every block of the image tower) and check with "
            "count_trainable for each rank.")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    given = [answer.get(r) for r in ranks] if isinstance(answer, dict) else answer
    try:
        given = [int(g) for g in given]
    except (TypeError, ValueError):
        return verdict(False, "expected three numbers [n(1), n(4), n(16)]. " + hint)
    d, per_rank = _clip_and_classes()[0].config.vision.width, target[0]
    return verdict(given == target, hint,
                   f"{target}: {per_rank} numbers per unit of rank. Each adapted {d} x {d} "
                   f"projection gets {d} r + {d} r = {2 * d} r; with q and v in each of the "
                   f"{per_rank // (4 * d)} blocks that is {per_rank} r. Linear in r, and tiny "
                   "next to the tower's weights.")
