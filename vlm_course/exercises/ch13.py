"""Checks for chapter 13's exercises (real models and real scale).

The smallest batch that splits over four processes, the loss without the all-gather and the share
of a photo a centre crop keeps are computed with the package (``training.data``, the shipped tiny
CLIP and ``clip_loss``, ``hub.preprocess``). Importing this module does not import torch.
"""

from __future__ import annotations

from functools import lru_cache

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import choice, number

__all__ = ["check_legacy_pooling", "check_smallest_batch", "check_local_loss",
           "check_crop_share"]


def check_legacy_pooling(answer) -> Verdict:
    """Exercise 1: what setting ``text_config.eos_token_id`` to 2 changes in the exported model."""
    return choice(
        answer, "a", ("a", "b", "c"),
        hint="the legacy rule pools every caption at its largest token id. Which id does the "
             "export give [EOS] (interop.hf.token_id_map), and which position holds the largest "
             "id of a caption then?",
        praise="nothing changes: with eos_token_id 2 Hugging Face pools every caption at its "
               "largest token id, and the export moved [EOS] to the last id of the vocabulary, "
               "the largest there is, so both rules pick the same position. Had [EOS] stayed at "
               "id 2, the legacy rule would pool at the caption's largest word id: "
               "tests/test_interop.py shows those embeddings differ.")


def check_smallest_batch(answer) -> Verdict:
    """Exercise 2: the smallest global batch that four processes can share."""
    from vlm_course.training.data import scene_indices

    def splits(batch: int, world: int = 4) -> bool:
        try:
            return all(len(scene_indices(0, batch, r, world)) >= 1 for r in range(world))
        except ValueError:
            return False

    target = next(b for b in range(1, 1000) if splits(b))
    return number(
        answer, target,
        hint="every rank takes a contiguous slice of the global batch "
             "(vlm_course.training.data.scene_indices): which batch sizes does it accept for "
             "world_size=4, and how many pairs does each rank get?",
        praise=f"{target}: the global batch must split evenly over the processes and leave each "
               "at least one pair (the recipe refuses a batch that does not split). With 4 "
               "processes the losses still agree with one process up to float32 rounding. A "
               "contrastive batch that small is a poor task, though: 3 negatives per pair.")


@lru_cache(maxsize=1)
def _local_and_gathered_loss() -> tuple[float, float]:
    """The shipped tiny CLIP's loss on 64 validation pairs: mean over four processes that each
    score only their own 16 pairs, and over all 64 in one softmax (computed once)."""
    import torch

    from vlm_course import pretrained
    from vlm_course.evaluation.shapeworld_report import world_config_from_card
    from vlm_course.objectives.contrastive import clip_loss
    from vlm_course.world import ShapeWorld

    name = "clip_tiny_shapeworld"
    model = pretrained.load(name, device="cpu")
    images, texts = ShapeWorld(world_config_from_card(pretrained.card(name))).pairs(
        "val", range(64), seed=0)
    with torch.no_grad():
        img, txt, scale = model(images, model.tokenize(texts))
        local = [float(clip_loss(img[i:i + 16], txt[i:i + 16], scale)) for i in range(0, 64, 16)]
        whole = float(clip_loss(img, txt, scale))
    return sum(local) / len(local), whole


def check_local_loss(answer) -> Verdict:
    """Exercise 3: the mean CLIP loss of four processes that each use only their own 16 of the
    64 validation pairs (no all-gather), for the shipped tiny CLIP."""
    target, whole = _local_and_gathered_loss()
    return number(
        answer, target, rel=1e-3,
        hint="split the 64 pairs into 4 consecutive chunks of 16, compute clip_loss on each "
             "chunk's image and text embeddings (same logit scale) and average the four.",
        praise=f"{target:.4f} against {whole:.4f} with all 64 pairs in one softmax: smaller, "
               "because each image now competes with 15 wrong captions instead of 63 (chance "
               "level log 16 = 2.77 instead of log 64 = 4.16). Without the gather each process "
               "would optimise an easier loss than the single process does.")


def check_crop_share(answer) -> Verdict:
    """Exercise 4: the share of a 427 x 640 photo's width that ``ImagePreprocess(224, 224)``
    keeps."""
    import torch

    from vlm_course.hub.preprocess import ImagePreprocess

    H, W = 427, 640
    ramp = torch.linspace(0, 1, W).expand(1, 3, H, W).contiguous()   # pixel value = column / W
    kept = ImagePreprocess(224, 224).resize_crop(ramp)[0, 0, 0]        # (224,) first row
    target = float(kept[-1] - kept[0])
    return number(
        answer, target, tol=0.01,
        hint="the shorter side (427) becomes 224 and the longer one is scaled by the same factor; "
             "the centre crop then keeps 224 columns of the resized width.",
        praise=f"about {target:.0%}: the short side is scaled to 224, the long side to 335, and "
               "the crop keeps the middle 224 columns, so a sixth of the photo is cut on each "
               "side; the rocket's sides are lost. Real CLIPs see only the centre square.")
