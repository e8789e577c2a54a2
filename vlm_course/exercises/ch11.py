"""Checks for chapter 11's exercises (knowledge distillation: KD loss, ViLD, MaskCLIP+).

Which loss keeps its size across temperatures and which distance keeps its gradient near the
target are computed with the package's loss functions; the answers about trained detectors and
segmenters (too slow to retrain in the exercises) quote the chapter's measurements.
Importing this module does not import torch.
"""

from __future__ import annotations

from vlm_course.exercises import Verdict
from vlm_course.exercises.kinds import choice

__all__ = ["check_temperature_factor", "check_distill_weight", "check_distance_gradient",
           "check_soft_pixels", "check_keep_top"]

_ABC = ("a", "b", "c")


def check_temperature_factor(answer, student_logits, teacher_logits) -> Verdict:
    """Exercise 1: which version of the KD loss, ``"with"`` or ``"without"`` the T**2 factor,
    stays of comparable size for T = 1, 4, 20 on the given logits."""
    from vlm_course.distill.losses import kd_loss

    temps = (1.0, 4.0, 20.0)
    with_t2 = [float(kd_loss(student_logits, teacher_logits, T)) for T in temps]
    without = [v / T**2 for v, T in zip(with_t2, temps, strict=True)]

    def spread(values):                     # largest over smallest value
        return max(values) / min(values)

    right = "with" if spread(with_t2) < spread(without) else "without"
    return choice(
        answer, right, ("with", "without"),
        hint="compute kd_loss at the three temperatures (it includes T**2) and divide each by "
             "T**2 for the other version; compare the largest value with the smallest in each.",
        praise=f"with T**2 the loss moves by a factor {spread(with_t2):.1f} from T = 1 to 20, "
               f"without it by {spread(without):.0f}: the softened distributions get close, so "
               "the KL shrinks roughly as 1/T**2 for large T. The factor keeps a fixed weight of "
               "the KD term meaningful at any temperature.")


def check_distill_weight(answer) -> Verdict:
    """Exercise 2: how base and novel AP move with ViLD's image_weight 0.25 and 4."""
    return choice(
        answer, "b", _ABC,
        hint="reread the trade-off under the detector table: the two losses pull the same "
             "region embedding in two directions. What happens to the base labels when the "
             "distillation term dominates?",
        praise="measured on the 300 test scenes (base / novel AP): weight 0 gives 0.59 / 0.09, "
               "0.25 gives 0.53 / 0.33, 1 gives 0.53 / 0.46 and 4 gives 0.17 / 0.42. A small "
               "weight already brings most of the novel gain; a large one lets the copy of the "
               "teacher's crop embeddings crowd out the base labels (and the background), and "
               "base AP collapses: the trade-off ViLD tunes with its weight.")


def check_distance_gradient(answer) -> Verdict:
    """Exercise 3: which distance, ``"l1"`` or ``"cosine"``, keeps the size of its gradient as
    the student's embedding approaches the teacher's."""
    import torch

    from vlm_course.distill.losses import embedding_distill_loss

    g = torch.Generator().manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(1, 64, generator=g), dim=-1)
    step = torch.nn.functional.normalize(torch.randn(1, 64, generator=g), dim=-1)

    def grad_norm(distance: str, eps: float) -> float:
        student = (teacher + eps * step).requires_grad_(True)
        embedding_distill_loss(student, teacher, distance=distance).backward()
        return float(student.grad.norm())

    ratio = {d: grad_norm(d, 1e-3) / grad_norm(d, 0.5) for d in ("l1", "cosine")}
    right = max(ratio, key=ratio.get)
    return choice(
        answer, right, ("l1", "cosine"),
        hint="compute the gradient of embedding_distill_loss with respect to the student's "
             "embedding, once far from the teacher's and once very close, for each distance.",
        praise=f"the L1 gradient keeps its size near the target (ratio close vs far "
               f"{ratio['l1']:.2f}) while 1 - cos flattens out ({ratio['cosine']:.3f}). At the "
               "same weight the cosine term distils less strongly once embeddings are close, "
               "which is one reason novel AP fell to 0.33 with the cosine distance (base "
               "unchanged at 0.53) when the chapter was written.")


def check_soft_pixels(answer) -> Verdict:
    """Exercise 4: the segmenter with soft teacher maps (kd_weight=1.0) on unannotated pixels."""
    return choice(
        answer, "c", _ABC,
        hint="look at the teacher's MaskCLIP maps in chapter 08: how different are the cosines "
             "of one pixel with the different shape texts? What would a student learn by "
             "matching those distributions rather than their arg-max?",
        praise="worse on both (base 0.09, novel 0.11 mIoU when measured): the teacher's soft "
               "maps are flat, cosines that differ little between shapes, so matching them "
               "teaches the student the teacher's uncertainty, while the hard arg-max labels "
               "keep only its decision.")


def check_keep_top(answer) -> Verdict:
    """Exercise 5: do pseudo-labels improve with keep_top=2?"""
    return choice(
        answer, "b", _ABC,
        hint="score the teacher's pseudo-labels themselves (pseudo_logits(...).argmax(1)) with "
             "keep_top=1 and keep_top=2 on the test scenes: a student trained on them follows "
             "their quality.",
        praise="keeping the top 2 lets a second shape into every scene, and in a one-object "
               "scene that second shape is always wrong; these scenes have one or two objects. "
               "When the chapter was written the top-2 pseudo-labels scored 0.22 mIoU (novel "
               "0.11) against 0.25 (novel 0.14) with the top 1, and the student trained on them "
               "followed (0.22, novel 0.10).")
