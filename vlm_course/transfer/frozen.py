"""A frozen VLM with a class list: what every transfer method of chapter 10 starts from.

Chapter 10 (transfer learning; the survey's "VLMs with transfer learning").  Each method — CoOp,
CoCoOp, VPT, CLIP-Adapter, Tip-Adapter, LoRA, the linear probe and the zero-shot baseline — wraps a
pre-trained model that implements the course's VLM interface (``tokenize``, ``encode_image``,
``encode_text``, ``logit_scale``) and adds a few parameters of its own.  :class:`FrozenVLM` is
their common base:

* it freezes the model (``requires_grad_(False)``, eval mode) and keeps it *outside* the module
  tree, so ``method.parameters()`` / ``state_dict()`` hold exactly the method's own parameters
  and an optimiser can never touch the VLM;
* it holds the class names (checked against the tokenizer's vocabulary) and the frozen
  ``scale = exp(logit_scale)`` that turns cosine similarities into logits;
* ``forward(images) -> (B, K)`` logits.  A method whose image path is the frozen
  ``encode_image`` sets ``uses_image_features = True`` and implements
  ``logits_from_features(image_emb (B, E) unit rows) -> (B, K)``; the fitting loop then encodes
  the few-shot images once instead of at every step (same result: the encoder is frozen and in
  eval mode).

:class:`ZeroShot` is the baseline with no parameters: the hand-written prompt classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FrozenVLM", "ZeroShot", "freeze", "check_vlm", "check_classnames",
           "DEFAULT_TEMPLATES"]

#: The hand-written prompt every classifier head starts from (CoOp's "a photo of a {}.").
DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
VLM_INTERFACE = ("tokenize", "encode_image", "encode_text", "logit_scale")


def check_vlm(model) -> None:
    """TypeError unless ``model`` implements the VLM interface (``tokenize``, ``encode_image``,
    ``encode_text``, ``logit_scale``)."""
    missing = [a for a in VLM_INTERFACE if not hasattr(model, a)]
    if missing or not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module with the VLM interface {VLM_INTERFACE}, "
                        f"got {type(model).__name__} (missing {missing})")


def freeze(model: nn.Module) -> nn.Module:
    """Freeze ``model`` in place: no parameter requires a gradient, eval mode.  Returns it."""
    model.requires_grad_(False)
    model.eval()
    return model


def check_classnames(classnames: Sequence[str], model=None) -> list[str]:
    """A non-empty list of distinct non-empty strings; words ``model``'s tokenizer does not know
    raise ValueError listing them (an unknown word would silently become ``[UNK]``)."""
    if isinstance(classnames, str) or not isinstance(classnames, (list, tuple)) or not classnames:
        raise ValueError(f"classnames must be a non-empty list of strings, got {classnames!r}")
    if not all(isinstance(c, str) and c.strip() for c in classnames):
        raise ValueError(f"classnames must be non-empty strings, got {list(classnames)!r}")
    if len(set(classnames)) != len(classnames):
        raise ValueError(f"classnames must be distinct, got {list(classnames)!r}")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "unknown_words"):
        unknown = tokenizer.unknown_words(list(classnames))
        if unknown:
            raise ValueError(f"classnames contain words the model's tokenizer does not know: "
                             f"{unknown}")
    return list(classnames)


def _check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    if isinstance(templates, str) or not isinstance(templates, (list, tuple)) or not templates:
        raise ValueError(f"templates must be a non-empty list of strings with '{{}}', "
                         f"got {templates!r}")
    bad = [t for t in templates if not isinstance(t, str) or "{}" not in t]
    if bad:
        raise ValueError(f"templates need one '{{}}' for the class name, got {bad!r}")
    return tuple(templates)


class FrozenVLM(nn.Module):
    """Base class: a frozen VLM (not a submodule), ``classnames`` and the frozen logit scale.

    ``templates``: when given, the prompt-ensemble text classifier of the class names is kept in
    the (non-persistent) buffer ``text_weights`` (K, E), unit rows, for heads that classify with
    the hand-written prompts (CLIP-Adapter, Tip-Adapter, VPT, image-side LoRA).
    Raises TypeError for a model without the VLM interface and ValueError for bad class names or
    templates.
    """

    uses_image_features = False

    def __init__(self, model, classnames: Sequence[str],
                 templates: Sequence[str] | None = None):
        super().__init__()
        check_vlm(model)
        freeze(model)
        object.__setattr__(self, "vlm", model)  # not registered: the VLM is not ours to train
        self.templates = None if templates is None else _check_templates(templates)
        self._classnames = check_classnames(classnames, model)
        self.register_buffer("text_weights", None, persistent=False)
        if self.templates is not None:
            self.text_weights = self.prompt_classifier(self._classnames)

    @property
    def classnames(self) -> list[str]:
        return list(self._classnames)

    @property
    def num_classes(self) -> int:
        return len(self._classnames)

    @property
    def device(self) -> torch.device:
        return self.vlm.logit_scale.device

    @property
    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` of the frozen VLM, a () float tensor (no gradient)."""
        return self.vlm.logit_scale.detach().exp()

    def set_classnames(self, classnames: Sequence[str]) -> None:
        """Classify among other classes (e.g. the *new* classes of a base-to-new split)."""
        self._classnames = check_classnames(classnames, self.vlm)
        if self.templates is not None:
            self.text_weights = self.prompt_classifier(self._classnames)

    @torch.no_grad()
    def prompt_classifier(self, classnames: Sequence[str]) -> torch.Tensor:
        """(K, E) unit rows: the prompt ensemble of ``self.templates`` for ``classnames``."""
        from vlm_course.evaluation.zeroshot import build_classifier

        return build_classifier(self.vlm, classnames, self.templates).to(self.device)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, 3, H, W) float -> (N, E) unit rows from the frozen ``encode_image``."""
        if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
            raise ValueError("images must be a float tensor (N, 3, H, W), got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        return torch.cat([self.vlm.encode_image(images[i:i + batch_size].to(self.device))
                          for i in range(0, images.shape[0], batch_size)])

    def check_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        """``image_emb`` as a (B, E) float tensor on the VLM's device; ValueError otherwise."""
        if not torch.is_tensor(image_emb) or image_emb.dim() != 2 or not \
                image_emb.is_floating_point():
            raise ValueError("image_emb must be a float tensor (B, E), got "
                             f"{getattr(image_emb, 'shape', type(image_emb).__name__)}")
        return image_emb.to(self.device)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} changes the image path; "
                                  "call it on images")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, K) logits."""
        return self.logits_from_features(self.encode_images(images))


class ZeroShot(FrozenVLM):
    """Zero-shot CLIP (Radford et al. 2021; chapter 08): ``scale * cos(image, prompt(class))``.

    No trainable parameters; ``templates`` default to CoOp's hand-written "a photo of a {}.".
    ``logits_from_features((B, E) unit rows) -> (B, K)``.
    """

    uses_image_features = True

    def __init__(self, model, classnames: Sequence[str],
                 templates: Sequence[str] = DEFAULT_TEMPLATES):
        super().__init__(model, classnames, templates)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        image_emb = self.check_features(image_emb)
        return self.scale * image_emb @ self.text_weights.T
