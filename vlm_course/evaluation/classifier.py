"""A zero-shot classifier built once from class names and prompt templates (chapter 08).

CLIP (Radford et al. 2021, §3.1.4) classifies without labelled training data: every class name is
written into prompt templates ("a photo of a {}."), the prompts are encoded by the text tower, and
an image goes to the class whose text embedding is closest to its image embedding.  The survey
calls the choice of templates and class names *prompt engineering*; averaging several templates
per class is a *prompt ensemble* (each prompt embedding L2-normalised, averaged per class,
normalised again — :func:`vlm_course.evaluation.zeroshot.ensemble_embeddings`).

:class:`ZeroShotClassifier` encodes the K classes once (a (K, D) matrix of unit rows, the
"zero-shot weights") and then scores any number of images against them: top-1 / top-5 accuracy
and a confusion matrix (:mod:`vlm_course.evaluation.metrics`).  The same text side serves the
dense tasks (:mod:`~vlm_course.evaluation.segmentation`, :mod:`~vlm_course.evaluation.detection`).

Works with any model that has the course's VLM interface (``encode_image``, ``encode_text``,
``tokenize``, ``logit_scale``).  A word-level tokenizer maps a word it does not know to ``[UNK]``
silently; ``strict=True`` refuses such prompts instead (a sub-word tokenizer, as in a real CLIP,
has no unknown words and passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .metrics import confusion_matrix, topk_accuracy
from .zeroshot import build_classifier, encode_images, ensemble_embeddings, eval_mode

__all__ = ["unknown_words", "check_vocabulary", "prompt_ensemble", "ZeroShotClassifier",
           "template_sweep"]


def unknown_words(model, texts: Sequence[str]) -> list[str]:
    """Sorted distinct words of ``texts`` that ``model``'s tokenizer does not know.

    Uses ``model.tokenizer.unknown_words`` (the course's word-level tokenizer); a model without
    one (e.g. a sub-word tokenizer, which can spell any word) has no unknown words: ``[]``.
    """
    tokenizer = getattr(model, "tokenizer", None)
    finder = getattr(tokenizer, "unknown_words", None)
    return sorted(finder(list(texts))) if callable(finder) else []


def _check_names(classnames) -> list[str]:
    if isinstance(classnames, str) or not isinstance(classnames, Sequence) or not classnames:
        raise ValueError(f"classnames must be a non-empty list of class names, got {classnames!r}")
    bad = [c for c in classnames if not isinstance(c, str) or not c.strip()]
    if bad:
        raise ValueError(f"classnames must be non-empty strings, got {bad!r}")
    if len(set(classnames)) != len(classnames):
        dup = sorted({c for c in classnames if list(classnames).count(c) > 1})
        raise ValueError(f"classnames must be distinct, got duplicates {dup}")
    return list(classnames)


def _check_templates(templates) -> list[str]:
    if isinstance(templates, str) or not isinstance(templates, Sequence) or not templates:
        raise ValueError(f"templates must be a non-empty list of strings with '{{}}', got "
                         f"{templates!r}")
    bad = [t for t in templates if not isinstance(t, str) or "{}" not in t]
    if bad:
        raise ValueError(f"templates must each hold one '{{}}' for the class name, got {bad!r}")
    return list(templates)


def check_vocabulary(model, classnames: Sequence[str], templates: Sequence[str],
                     strict: bool = True) -> list[str]:
    """The unknown words of every ``template.format(name)``; with ``strict`` raise instead.

    Raises ValueError listing the unknown words (and the prompts that contain them) when
    ``strict`` and any word is unknown; ValueError for an empty class or template list.
    """
    names = _check_names(classnames)
    _check_templates(templates)
    prompts = [t.format(c) for c in names for t in templates]
    unknown = unknown_words(model, prompts)
    if unknown and strict:
        hits = [p for p in prompts if unknown_words(model, [p])][:3]
        raise ValueError(f"classnames/templates contain words the tokenizer does not know: "
                         f"{unknown} (e.g. in {hits}); they would all become [UNK]. Rephrase "
                         f"them or pass strict=False")
    return unknown


@torch.no_grad()
def prompt_ensemble(model, prompts: Sequence[str], *, strict: bool = False) -> torch.Tensor:
    """(D,) float32 unit embedding of complete prompts (no class name to fill in), ensembled as
    for a class: each prompt embedding normalised, averaged, normalised again.  Used for the
    background class of segmentation ("the background", ...).

    Raises ValueError for an empty list, and (strict) for words the tokenizer does not know.
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts \
            or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"prompts must be a non-empty list of non-empty strings, got {prompts!r}")
    unknown = unknown_words(model, prompts)
    if unknown and strict:
        raise ValueError(f"prompts contain words the tokenizer does not know: {unknown}")
    with eval_mode(model):
        emb = model.encode_text(model.tokenize(list(prompts))).float().cpu()     # (T, D)
    return ensemble_embeddings(emb[None])[0]


class ZeroShotClassifier:
    """Zero-shot classification weights for ``classnames``, encoded once (CLIP; chapter 08).

    Args:
        model: a VLM (``encode_image``, ``encode_text``, ``tokenize``, ``logit_scale``).
        classnames: K distinct class names, e.g. ``["circle", "square"]``; class id = position.
        templates: format strings with one ``{}``; one template is plain prompt engineering,
            several are a prompt ensemble.
        strict: raise ValueError when a prompt contains a word the tokenizer does not know
            (otherwise those words are listed in ``self.unknown_words``).

    Attributes: ``weights`` (K, D) float32 unit rows on the CPU; ``scale`` the model's inverse
    temperature ``exp(logit_scale)`` (capped at 100, as in training) used by :meth:`logits`.
    Raises ValueError for an empty class list or template list, duplicate class names, a
    template without ``{}``, or (strict) unknown words.
    """

    def __init__(self, model, classnames: Sequence[str],
                 templates: Sequence[str] = ("a photo of a {}.",), *, strict: bool = False):
        self.model = model
        self.classnames = _check_names(classnames)
        self.templates = _check_templates(templates)
        self.unknown_words = check_vocabulary(model, self.classnames, self.templates, strict)
        self.weights = build_classifier(model, self.classnames, self.templates)    # (K, D)
        scale = getattr(model, "logit_scale", None)
        self.scale = min(float(torch.as_tensor(scale).detach().float().exp()), 100.0) \
            if scale is not None else 100.0

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def __repr__(self) -> str:
        return (f"ZeroShotClassifier(K={self.num_classes}, templates={len(self.templates)}, "
                f"D={self.weights.shape[1]})")

    def encode(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, D) float CPU image embeddings of (N, 3, H, W) ``images`` (model in eval mode)."""
        return encode_images(self.model, images, batch_size)

    def logits(self, images: torch.Tensor | None = None, *,
               image_emb: torch.Tensor | None = None) -> torch.Tensor:
        """(N, K) scaled cosine similarities ``scale * cos(image, class)`` for ``images``
        (N, 3, H, W) or for precomputed ``image_emb`` (N, D) (pass exactly one)."""
        if (images is None) == (image_emb is None):
            raise ValueError("pass exactly one of images (N, 3, H, W) or image_emb (N, D)")
        emb = self.encode(images) if images is not None else image_emb
        if emb.ndim != 2 or emb.shape[1] != self.weights.shape[1]:
            raise ValueError(f"image_emb must be (N, D={self.weights.shape[1]}), got "
                             f"{tuple(emb.shape)}")
        return self.scale * F.normalize(emb.float().cpu(), dim=-1) @ self.weights.T

    def predict(self, images: torch.Tensor | None = None, *,
                image_emb: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) int64 predicted class ids."""
        return self.logits(images, image_emb=image_emb).argmax(dim=1)

    def evaluate(self, labels: torch.Tensor, images: torch.Tensor | None = None, *,
                 image_emb: torch.Tensor | None = None, ks: Sequence[int] = (1, 5)) -> dict:
        """``{"top1": float, "top5": float, ..., "confusion": (K, K) int64}`` on labelled images
        (rows of the confusion matrix = true class, columns = predicted)."""
        logits = self.logits(images, image_emb=image_emb)
        if not torch.is_tensor(labels) or labels.shape != (logits.shape[0],):
            raise ValueError(f"labels must be a ({logits.shape[0]},) tensor of class ids, got "
                             f"{getattr(labels, 'shape', labels)}")
        out: dict = topk_accuracy(logits, labels.cpu(), ks)
        out["confusion"] = confusion_matrix(logits.argmax(dim=1), labels.cpu(), self.num_classes)
        return out


@torch.no_grad()
def template_sweep(model, image_emb: torch.Tensor, labels: torch.Tensor,
                   classnames: Sequence[str], templates: Sequence[str]) -> dict:
    """Top-1 accuracy of every single template and of their ensemble, on the same images.

    image_emb: (N, D) image embeddings (encode once, e.g. with :func:`encode_images`);
    labels: (N,) class ids.  Returns ``{"single": {template: acc}, "mean_single": float,
    "best_single": float, "ensemble": float}`` — the experiment behind CLIP's finding that an
    ensemble of prompts beats a typical single prompt.
    """
    _check_templates(templates)
    with eval_mode(model):
        single = {t: ZeroShotClassifier(model, classnames, [t]).evaluate(
            labels, image_emb=image_emb, ks=(1,))["top1"] for t in templates}
        ensemble = ZeroShotClassifier(model, classnames, templates).evaluate(
            labels, image_emb=image_emb, ks=(1,))["top1"]
    accs = list(single.values())
    return {"single": single, "mean_single": sum(accs) / len(accs), "best_single": max(accs),
            "ensemble": ensemble}
