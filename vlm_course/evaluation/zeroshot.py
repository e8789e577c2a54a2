"""Zero-shot classification with prompt templates and prompt ensembles (chapter 08; CLIP 2021).

A vision-language model classifies without training on the labels: each class name is put into
prompt templates ("a photo of a {}."), the prompts are encoded, and an image is given the class
whose text embedding is most similar to its image embedding.

Prompt ensemble (Radford et al. 2021, §3.1.4): encode every template for a class, L2-normalise each
prompt embedding, average them per class, L2-normalise the average.  The result is a (K, D)
"zero-shot classifier" whose rows are unit vectors.

Works with any model implementing the course's VLM interface: ``encode_image(images) -> (B, D)``,
``encode_text(tokens) -> (B, D)``, ``tokenize(list[str])``.  The ShapeWorld evaluation used in the
shipped model's card is in :mod:`vlm_course.evaluation.shapeworld`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check_templates(templates: Sequence[str]) -> None:
    if isinstance(templates, str) or len(templates) == 0:
        raise ValueError(f"templates must be a non-empty list of strings with '{{}}', got {templates!r}")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"every template needs a '{{}}' placeholder for the class name, got {bad}")


def ensemble_embeddings(prompt_emb: torch.Tensor) -> torch.Tensor:
    """Prompt-ensemble class embeddings from per-prompt embeddings.

    Args:
        prompt_emb: (K, T, D) float — T prompt embeddings for each of K classes (any norm).
    Returns:
        (K, D) float, unit rows: normalise each prompt, average over T, normalise again.
    """
    if prompt_emb.ndim != 3:
        raise ValueError(f"prompt_emb must be (K, T, D), got {tuple(prompt_emb.shape)}")
    return F.normalize(F.normalize(prompt_emb.float(), dim=-1).mean(dim=1), dim=-1)


@torch.no_grad()
def build_classifier(model, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Encode ``templates`` × ``classnames`` with ``model`` and return the (K, D) ensemble classifier.

    ``templates`` are format strings with one ``{}`` (e.g. ``"a {} shape"``); with one template this
    is plain prompt engineering, with several it is a prompt ensemble.
    """
    _check_templates(templates)
    if isinstance(classnames, str) or len(classnames) == 0:
        raise ValueError(f"classnames must be a non-empty list of strings, got {classnames!r}")
    prompts = [t.format(c) for c in classnames for t in templates]   # K*T, class-major
    emb = model.encode_text(model.tokenize(prompts)).float().cpu()   # (K*T, D)
    return ensemble_embeddings(emb.view(len(classnames), len(templates), -1))


def zeroshot_logits(image_emb: torch.Tensor, classifier: torch.Tensor,
                    scale: float = 100.0) -> torch.Tensor:
    """(B, K) logits ``scale * cos(image, class)`` from (B, D) image and (K, D) class embeddings."""
    if image_emb.ndim != 2 or classifier.ndim != 2 or image_emb.shape[1] != classifier.shape[1]:
        raise ValueError(f"image_emb (B,D) and classifier (K,D) must share D, got "
                         f"{tuple(image_emb.shape)} and {tuple(classifier.shape)}")
    return scale * F.normalize(image_emb.float(), dim=-1) @ F.normalize(classifier.float(), dim=-1).T


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of (B, K) ``logits`` against (B,) long ``labels``, in [0, 1]."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (B,K) and labels (B,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    return float((logits.argmax(dim=1) == labels.to(logits.device)).float().mean())


@torch.no_grad()
def encode_images(model, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, D) float CPU image embeddings of (N, 3, H, W) ``images``, encoded in chunks."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    return torch.cat([model.encode_image(images[i:i + batch_size]).float().cpu()
                      for i in range(0, images.shape[0], batch_size)])


@torch.no_grad()
def zeroshot_predict(model, images: torch.Tensor, classnames: Sequence[str],
                     templates: Sequence[str]) -> torch.Tensor:
    """(N,) long predicted class index for each image: the one-call zero-shot classifier."""
    classifier = build_classifier(model, classnames, templates)
    return zeroshot_logits(encode_images(model, images), classifier).argmax(dim=1)
