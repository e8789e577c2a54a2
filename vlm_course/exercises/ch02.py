"""Checks for chapter 02's exercises (network architectures): skips, pooling, ViT, text encoder."""

from __future__ import annotations

from vlm_course.exercises import Verdict, unanswered, verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_depth4_spread", "check_zero_init", "check_gap_position", "check_mean_query",
           "check_position_task", "check_postnorm_warmup", "check_left_padding",
           "check_missing_eos"]


def _spread(images, labels, skip: bool) -> float:
    """max/min over blocks of |grad| of conv1 at initialisation, for the chapter's depth-4 net."""
    import torch
    import torch.nn.functional as F

    from vlm_course.models.resnet import ResNet, ResNetConfig
    from vlm_course.settings import seed_everything

    with torch.random.fork_rng():
        seed_everything(0)
        net = ResNet(ResNetConfig(layers=(4,), width=16, block="basic", image_size=32, pool="avg",
                                  output_dim=8, resnet_d=False, skip=skip, zero_init_last=False))
        F.cross_entropy(net(images), labels).backward()
    norms = [blk.conv1.weight.grad.norm().item() for blk in net.stages[0]]
    return max(norms) / min(norms)


def check_depth4_spread(answer, images, labels) -> Verdict:
    """Exercise 1: ``(residual, plain)`` gradient spreads of the depth-4 nets at initialisation,
    measured on ``images`` (B, 3, 32, 32) and ``labels`` (B,) as in the chapter (seed 0)."""
    hint = ("build both nets as in deep_cfg with layers=(4,), seed_everything(0) before each, "
            "backpropagate the loss on x32_train[:128], and take max/min of the conv1 gradient "
            "norms; answer with the pair (residual, plain).")
    if unanswered(answer):
        return verdict(False, hint, answer=answer)
    try:
        residual, plain = (float(a) for a in answer)
    except (TypeError, ValueError):
        return verdict(False, f"expected a pair of numbers (residual, plain), got {answer!r}. "
                       + hint)
    truth = (_spread(images, labels, True), _spread(images, labels, False))
    ok = all(abs(a - t) <= 0.05 * t for a, t in zip((residual, plain), truth, strict=True))
    return verdict(ok, hint, praise=(
        f"residual {truth[0]:.1f}, plain {truth[1]:.1f}: at depth 4 (9 layers) the plain net's "
        "gradients are almost as even as the residual net's, and it does learn (we measured a "
        "training loss of about 1.15 after 100 steps, against 1.99 at depth 16) — but the "
        "residual net is still faster (0.42). The gap grows with depth: He et al. saw a plain "
        "34-layer net do worse than a plain 18-layer one on ImageNet."))


def check_zero_init(answer) -> Verdict:
    """Exercise 2: what a residual block computes at initialisation with a zero last BN scale."""
    return choice(
        answer, "b", "abc",
        hint="with the last BatchNorm's weight at zero, what does the residual branch output? Add "
             "the shortcut and apply the final relu.",
        praise="The branch outputs zero, so each block is relu(x + 0) = x for the non-negative "
               "inputs it gets after a relu: the whole network starts as (almost) the identity "
               "from stem to head, and the branches grow from zero as training needs them — one of "
               "the 'bag of tricks' that CLIP's ResNets use.")


def check_gap_position(answer) -> Verdict:
    """Exercise 3: where a ResNet + GAP gets position information from."""
    return choice(
        answer, "a", "abc",
        hint="look at what a convolution with zero padding outputs near the border of a constant "
             "image, and how large a deep ResNet's receptive field is.",
        praise="Zero padding: cells near the border see the padded zeros, and deep features with "
               "large receptive fields turn that into an absolute-position code (Islam et al. "
               "2020); we measured 1.00 validation accuracy after 200 steps. The GAP result "
               "depends on the backbone; the attention pool gets position explicitly from its "
               "position embedding.")


def check_mean_query(answer) -> Verdict:
    """Exercise 4: the mean-of-the-grid query of CLIP's attention pool."""
    return choice(
        answer, "c", "abc",
        hint="read AttentionPool2d.tokens (show_source above): what is token 0, and what is added "
             "to it?",
        praise="A learned query is the same for every image (it asks 'what is here?' the same way "
               "each time); the mean token adapts the question to the image. CLIP uses the mean "
               "token with the position embedding added to it too — forgetting either is a classic "
               "re-implementation bug.")


def check_position_task(answer) -> Verdict:
    """Exercise 5: do the position embeddings learn the layout when the task is the shape?"""
    return choice(
        answer, "b", "abc",
        hint="what in the shape task depends on where the object is? Position embeddings change "
             "only as much as the loss asks them to.",
        praise="No: we measured a neighbour similarity of about -0.05, the same as far-apart "
               "pairs. When the task does not depend on where things are, nothing pushes the "
               "embeddings into a layout; the structure in the ViT paper comes from large-scale "
               "training on natural images, where position always matters somewhat.")


def check_postnorm_warmup(answer) -> Verdict:
    """Exercise 6: a 30-step warm-up for the post-norm ViT at lr = 1e-2."""
    return choice(
        answer, "b", "abc",
        hint="Xiong et al. 2020 explain why post-norm needs a warm-up and pre-norm does not; "
             "think about whether a warm-up removes the cause or only softens the start.",
        praise="The warm-up helps: we measured a final loss of about 1.5 instead of 2.08 (chance), "
               "but it does not catch up with pre-norm, which reached 0.09 at the same rate with "
               "no warm-up. Post-norm's gradients near the output are large at initialisation, so "
               "it needs a warm-up; pre-norm's are well scaled and it can skip it.")


def check_left_padding(answer) -> Verdict:
    """Exercise 7: pooling at ``attention_mask.sum() - 1`` with left padding."""
    return choice(
        answer, "c", "abc",
        hint="write out a left-padded mask such as [0, 0, 1, 1, 1] and find position sum - 1; "
             "then give TextEncoder such a mask.",
        praise="sum - 1 would point at a word in the middle of the caption (or at padding), not at "
               "[EOS], and the embedding would ignore the end of the sentence — so TextEncoder "
               "rejects masks that are not right-padded with a ValueError.")


def check_missing_eos(answer) -> Verdict:
    """Exercise 8: the position Hugging Face pools when ``eos_token_id`` never occurs in the ids."""
    return number(
        answer, 0,
        hint="HF finds [EOS] as (input_ids == eos_token_id).int().argmax(-1): what does argmax "
             "return for a row of zeros?",
        praise="Position 0: the id never occurs, argmax of an all-zero row is 0, and the model "
               "silently pools [SOS] — the same embedding for every caption. "
               "tests/test_models_text.py shows the pitfall and that setting the real id fixes it.")
