"""Zero-shot classification with prompt templates and prompt ensembles (chapter 08; CLIP 2021).

A vision-language model classifies without training on the labels: each class name is put into
prompt templates ("a photo of a {}."), the prompts are encoded, and an image is given the class
whose text embedding is most similar to its image embedding.

Prompt ensemble (Radford et al. 2021, §3.1.4): encode every template for a class, L2-normalise each
prompt embedding, average them per class, L2-normalise the average.  The result is a (K, D)
"zero-shot classifier" whose rows are unit vectors.

Works with any model implementing the course's VLM interface: ``encode_image(images) -> (B, D)``,
``encode_text(tokens) -> (B, D)``, ``tokenize(list[str])``.  The ShapeWorld evaluation used in the
shipped model's card is :func:`evaluate_shapeworld`, at the end of this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .checks import check_embeddings, check_images, check_positive_int, check_strings


@contextlib.contextmanager
def eval_mode(model):
    """Run ``model`` in eval mode (BatchNorm running statistics, no dropout), then restore its mode.

    Evaluation must neither depend on how images are batched nor update a BatchNorm tower's
    running statistics, whatever mode the caller left the model in.
    """
    was_training = bool(getattr(model, "training", False))
    if callable(getattr(model, "eval", None)):
        model.eval()
    try:
        yield model
    finally:
        if was_training and callable(getattr(model, "train", None)):
            model.train(True)


def _check_templates(templates: Sequence[str]) -> None:
    if isinstance(templates, str) or not isinstance(templates, Sequence) or len(templates) == 0:
        raise ValueError("templates must be a non-empty list of strings with '{}', "
                         f"got {templates!r}")
    check_strings("templates", templates)
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"every template needs a '{{}}' placeholder for the class name, got {bad}")


def ensemble_embeddings(prompt_emb: torch.Tensor) -> torch.Tensor:
    """Prompt-ensemble class embeddings from per-prompt embeddings.

    Args:
        prompt_emb: (K, T, D) float — T prompt embeddings for each of K classes (any norm).
    Returns:
        (K, D) float, unit rows: normalise each prompt, average over T, normalise again.
    Raises:
        TypeError: ``prompt_emb`` is not a float tensor.
        ValueError: ``prompt_emb`` is not a non-empty, finite (K, T, D) tensor.
    """
    if not isinstance(prompt_emb, torch.Tensor) or not prompt_emb.is_floating_point():
        got = prompt_emb.dtype if isinstance(prompt_emb, torch.Tensor) else type(prompt_emb)
        raise TypeError(f"prompt_emb must be a float tensor (K, T, D), got {got}")
    if prompt_emb.ndim != 3 or prompt_emb.numel() == 0:
        raise ValueError(f"prompt_emb must be a non-empty (K, T, D), got "
                         f"{tuple(prompt_emb.shape)}")
    if not torch.isfinite(prompt_emb).all():
        raise ValueError("prompt_emb must be finite, got NaN or inf values")
    return F.normalize(F.normalize(prompt_emb.float(), dim=-1).mean(dim=1), dim=-1)


@torch.no_grad()
def build_classifier(model, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Encode ``templates`` × ``classnames`` with ``model`` and return the (K, D) ensemble
    classifier.

    ``templates`` are format strings with one ``{}`` (e.g. ``"a {} shape"``); with one template this
    is plain prompt engineering, with several it is a prompt ensemble.

    Raises ``ValueError`` when ``templates`` is empty or a template lacks ``{}``, or
    ``classnames`` is empty or a lone string; ``TypeError`` when either holds a non-string.
    """
    _check_templates(templates)
    check_strings("classnames", classnames)
    prompts = [t.format(c) for c in classnames for t in templates]   # K*T, class-major
    with eval_mode(model):
        emb = model.encode_text(model.tokenize(prompts)).float().cpu()   # (K*T, D)
    return ensemble_embeddings(emb.view(len(classnames), len(templates), -1))


def zeroshot_logits(image_emb: torch.Tensor, classifier: torch.Tensor,
                    scale: float = 100.0) -> torch.Tensor:
    """(B, K) logits ``scale * cos(image, class)`` from (B, D) image and (K, D) class embeddings.

    Raises ``TypeError`` for a non-float input and ``ValueError`` when an input is not a finite,
    non-empty 2-D tensor, the two widths D differ, or ``scale`` is not a finite number > 0.
    """
    check_embeddings("image_emb", image_emb, "(B, D)")
    check_embeddings("classifier", classifier, "(K, D)")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
        0 < scale < float("inf")
    ):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    if image_emb.shape[1] != classifier.shape[1]:
        raise ValueError(f"image_emb (B,D) and classifier (K,D) must share D, got "
                         f"{tuple(image_emb.shape)} and {tuple(classifier.shape)}")
    return (scale * F.normalize(image_emb.float(), dim=-1)
            @ F.normalize(classifier.float(), dim=-1).T)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of (B, K) ``logits`` against (B,) long ``labels``, in [0, 1].

    Raises ``TypeError`` for float/non-tensor ``labels`` or non-float ``logits``; ``ValueError``
    when ``logits`` is not a finite non-empty (B, K), ``labels`` is not (B,), or a label is
    outside [0, K).
    """
    check_embeddings("logits", logits, "(B, K)")
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"labels must be an integer tensor (B,), got {got}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (B,K) and labels (B,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"labels must lie in [0, K) = [0, {logits.shape[1]}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return float((logits.argmax(dim=1) == labels.to(logits.device)).float().mean())


@torch.no_grad()
def encode_images(model, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, D) float CPU image embeddings of (N, 3, H, W) ``images``, encoded in chunks.

    Raises ``TypeError`` / ``ValueError`` when ``images`` is not a non-empty float (N, 3, H, W)
    tensor or ``batch_size`` is not an int >= 1.
    """
    check_images("images", images)
    check_positive_int("batch_size", batch_size)
    with eval_mode(model):
        return torch.cat([model.encode_image(images[i:i + batch_size]).float().cpu()
                          for i in range(0, images.shape[0], batch_size)])


@torch.no_grad()
def zeroshot_predict(model, images: torch.Tensor, classnames: Sequence[str],
                     templates: Sequence[str]) -> torch.Tensor:
    """(N,) long predicted class index for each image: the one-call zero-shot classifier.

    Raises what :func:`build_classifier` and :func:`encode_images` raise.
    """
    classifier = build_classifier(model, classnames, templates)
    return zeroshot_logits(encode_images(model, images), classifier).argmax(dim=1)


# ----------------------------------------------------------------------------- ShapeWorld
def _check_world_cfg(world_cfg) -> None:
    from vlm_course.world import WorldConfig

    if not isinstance(world_cfg, WorldConfig):
        raise TypeError(f"world_cfg must be a WorldConfig, got {type(world_cfg).__name__}")


def shapeworld_prompts(world_cfg, task: str) -> tuple[list[str], list[str]]:
    """Class names and prompt templates for a ShapeWorld zero-shot task.

    ``task``: ``"shape"`` (K = #shapes; the ensemble runs over "a {size} {colour} {}" for every
    size and colour, so no colour is favoured), ``"colour"`` (over "a {size} {} {shape}"), or
    ``"colour+shape"`` (K = #colours × #shapes, class "red circle", templates "a small {}",
    "a large {}", "a photo of a small {}", "a photo of a large {}").  Class ids follow
    ``world_cfg.shapes`` / ``world_cfg.colours`` / ``world_cfg.compositions``.
    Raises ``TypeError`` when ``world_cfg`` is not a ``WorldConfig`` and ``ValueError`` for an
    unknown ``task``.
    """
    _check_world_cfg(world_cfg)
    sizes = world_cfg.sizes
    if task == "shape":
        return list(world_cfg.shapes), [f"a {s} {c} {{}}" for s in sizes for c in world_cfg.colours]
    if task == "colour":
        return list(world_cfg.colours), [f"a {s} {{}} {h}" for s in sizes for h in world_cfg.shapes]
    if task == "colour+shape":
        names = [f"{c} {s}" for c, s in world_cfg.compositions]
        return names, [f"{p}a {s} {{}}" for p in ("", "a photo of ") for s in sizes]
    raise ValueError(f"task must be 'shape', 'colour' or 'colour+shape', got {task!r}")


@torch.no_grad()
def evaluate_shapeworld(model, world_cfg, n: int = 1000, *, split: str = "test", start: int = 0,
                        batch_size: int = 250) -> dict[str, float | int]:
    """Zero-shot accuracy on ``n`` single-object ShapeWorld scenes ``start .. start + n - 1``.

    The scenes come from ``world_cfg`` with exactly one object (so "the" shape and colour of an
    image are well defined); in the test split about ``world_cfg.test_heldout_fraction`` of them
    show a held-out colour–shape pair never seen in training.  Returns accuracies in [0, 1] for
    ``shape``, ``colour`` and ``colour+shape`` on all scenes (``all_*``), on the seen compositions
    (``seen_*``) and on the held-out ones (``heldout_*``), plus the counts ``n_all``, ``n_seen``,
    ``n_heldout``.

    Raises ``TypeError`` when ``world_cfg`` is not a ``WorldConfig``; ``ValueError`` when ``n`` or
    ``batch_size`` is not an int >= 1, ``start`` not an int >= 0, or ``split`` is unknown.
    """
    from vlm_course.world import SPLITS, ShapeWorld

    _check_world_cfg(world_cfg)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be >= 1 (an int), got {n!r}")
    check_positive_int("batch_size", batch_size)
    check_positive_int("start", start, low=0)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cfg = world_cfg.replace(min_objects=1, max_objects=1)
    world = ShapeWorld(cfg)
    images, labels = [], {"shape": [], "colour": []}
    for first in range(start, start + n, batch_size):
        batch = world.batch(split, range(first, min(first + batch_size, start + n)), masks=False)
        images.append(encode_images(model, batch.images))
        for key in labels:
            labels[key].append(batch.labels[key])
    emb = torch.cat(images)                                     # (n, D)
    shape, colour = torch.cat(labels["shape"]), torch.cat(labels["colour"])
    truth = {"shape": shape, "colour": colour, "colour+shape": colour * len(cfg.shapes) + shape}
    heldout = torch.isin(truth["colour+shape"], torch.tensor(cfg.heldout_ids))
    out: dict[str, float | int] = {"n_all": n, "n_heldout": int(heldout.sum()),
                                   "n_seen": int((~heldout).sum())}
    for task, y in truth.items():
        pred = zeroshot_logits(emb, build_classifier(model, *shapeworld_prompts(cfg, task)))
        correct = (pred.argmax(dim=1) == y).float()
        out[f"all_{task}"] = float(correct.mean())
        for name, subset in (("seen", ~heldout), ("heldout", heldout)):
            out[f"{name}_{task}"] = float(correct[subset].mean()) if subset.any() else float("nan")
    return out
