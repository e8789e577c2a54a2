"""Unsupervised transfer: pseudo-label unlabelled images with zero-shot predictions, fit a probe.

Chapter 14 (challenges: "unsupervised transfer"), after UPL (Huang et al. 2022, "Unsupervised
prompt learning for vision-language models", arXiv:2204.03649).  A downstream task comes with
images but no labels.  The frozen VLM labels them zero-shot; a linear probe is then fitted on the
VLM's own image features with those *pseudo*-labels, and replaces the zero-shot classifier.

Two steps, two functions:

* :func:`class_balanced_pseudo_labels` keeps, for every class, the ``k`` images the zero-shot
  classifier is most confident belong to it.  Taking the top ``k`` *per class* rather than the
  argmax of every image matters under a domain shift: zero-shot predictions then pile onto a few
  classes, and a probe fitted on every argmax would learn that bias back;
* :func:`pseudo_label_probe` fits :func:`vlm_course.evaluation.linear_probe.fit_probe` on the
  selected images.

Nothing here looks at a true label.
"""

from __future__ import annotations

import torch

from vlm_course.evaluation.checks import check_embeddings, check_positive_int

__all__ = ["class_balanced_pseudo_labels", "pseudo_label_probe"]


def class_balanced_pseudo_labels(logits: torch.Tensor, k: int
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick, for each of the K classes, the ``k`` images with the highest probability of it.

    logits: (N, K) float zero-shot logits of N unlabelled images (any scale; only their softmax
    over classes is used).  k: images kept per class, 1 <= k <= N.
    Returns ``(indices, labels)``: (M,) int64 row indices into ``logits`` and (M,) int64 pseudo
    labels in [0, K), sorted by index.  An image in the top ``k`` of several classes is kept
    once, for the class it is likeliest to be, so M <= K * k and a class may end with fewer
    than ``k`` images (in principle none, when every image it chose is likelier another class
    that chose it too).
    Raises TypeError / ValueError for logits that are not a finite non-empty (N, K) float
    tensor, and ValueError for ``k`` not an int in [1, N].
    """
    check_embeddings("logits", logits, "(N, K)")
    N, K = logits.shape
    check_positive_int("k", k)
    if k > N:
        raise ValueError(f"k must be at most the number of images N={N}, got {k}")
    probs = logits.float().softmax(dim=1)                       # (N, K)
    top = probs.topk(k, dim=0).indices                           # (k, K): class c's top images
    chosen = torch.zeros(N, dtype=torch.bool)
    chosen[top.flatten()] = True
    # an image chosen by several classes keeps the one it is likeliest to be
    picked_by = torch.zeros(N, K, dtype=torch.bool)
    picked_by[top, torch.arange(K).expand(k, K)] = True          # (N, K): which classes chose it
    masked = probs.masked_fill(~picked_by, -1.0)
    indices = chosen.nonzero().flatten()                          # (M,), ascending
    labels = masked[indices].argmax(dim=1)                        # (M,)
    return indices, labels


def pseudo_label_probe(features: torch.Tensor, logits: torch.Tensor, k: int, *,
                       C: float = 1.0):
    """Fit a linear probe on the ``k``-per-class pseudo-labelled images (UPL-style transfer).

    features: (N, D) float image features of the N unlabelled images (e.g. the VLM's image
    embeddings); logits: (N, K) float zero-shot logits of the same images.  ``C``: the probe's
    inverse regularisation, fixed (with no labels there is nothing to validate a sweep on).
    Returns ``(probe, indices, labels)``: the fitted
    :class:`~vlm_course.evaluation.linear_probe.Probe` (``probe.predict(features)`` gives class
    ids in [0, K)) and the selection of :func:`class_balanced_pseudo_labels`.
    Raises what :func:`class_balanced_pseudo_labels` and
    :func:`~vlm_course.evaluation.linear_probe.fit_probe` raise, and ValueError when features
    and logits hold a different number of images or the selection holds a single class.
    """
    from vlm_course.evaluation.linear_probe import fit_probe

    check_embeddings("features", features, "(N, D)")
    check_embeddings("logits", logits, "(N, K)")
    if features.shape[0] != logits.shape[0]:
        raise ValueError(f"features (N, D) and logits (N, K) must hold the same N images, got "
                         f"{tuple(features.shape)} and {tuple(logits.shape)}")
    indices, labels = class_balanced_pseudo_labels(logits, k)
    if len(torch.unique(labels)) < 2:
        raise ValueError(f"logits: the pseudo-labels hold a single class ({int(labels[0])}); "
                         f"a probe needs at least two")
    probe = fit_probe(features[indices], labels, C=C)
    return probe, indices, labels
