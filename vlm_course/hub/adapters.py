"""The course's VLM interface around real pretrained CLIPs (Hugging Face and OpenCLIP).

Chapter 13.  Every evaluation of :mod:`vlm_course.evaluation` (chapter 08) talks to a model through
four names only: ``tokenize(list[str]) -> dict``, ``encode_image(images (B, 3, H, W) float in
[0, 1]) -> (B, D)``, ``encode_text(tokens) -> (B, D)`` (both L2-normalised unless
``normalize=False``) and ``logit_scale`` (log-space).  The two adapters here give a Hugging Face
``transformers.CLIPModel`` (:class:`HFCLIP`) and an ``open_clip`` model (:class:`OpenCLIP`) those
names, so the very same classifier, retrieval and probing code runs on CLIP ViT-B/32 (Radford et
al. 2021) or a LAION-trained OpenCLIP (Cherti et al. 2023) as on the course's tiny CLIP.

What an adapter adds is the glue a real model needs: its sub-word tokenizer (padded and truncated
to the model's context length) and its image preprocessing (:class:`~.preprocess.ImagePreprocess`:
resize, centre-crop, normalise), applied inside ``encode_image`` so callers keep passing images in
``[0, 1]``.  This module never imports ``transformers`` or ``open_clip``: it wraps objects the
caller (or :mod:`vlm_course.hub.loading`) has built.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .preprocess import ImagePreprocess

__all__ = ["HFCLIP", "OpenCLIP"]


def _features(out) -> torch.Tensor:
    """Hugging Face returns a tensor (transformers 4) or an output with ``pooler_output`` (5)."""
    return out if torch.is_tensor(out) else out.pooler_output


def _check_images(images) -> torch.Tensor:
    if not torch.is_tensor(images) or not images.is_floating_point():
        raise TypeError(f"images must be a float tensor (B, 3, H, W) in [0, 1], got "
                        f"{getattr(images, 'dtype', type(images).__name__)}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    return images


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not texts or \
            not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts must be a non-empty list of strings, got {texts!r:.80}")
    return list(texts)


class _Adapter(nn.Module):
    """Shared part: ``forward``, ``device``, ``logit_scale`` and the normalisation switch."""

    def __init__(self, model: nn.Module, preprocess: ImagePreprocess):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(preprocess, ImagePreprocess):
            raise TypeError(f"preprocess must be an ImagePreprocess, got "
                            f"{type(preprocess).__name__}")
        self.model, self.preprocess = model, preprocess

    @property
    def logit_scale(self) -> torch.Tensor:
        """The wrapped model's **log-space** inverse temperature (both libraries store the log)."""
        return self.model.logit_scale

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] (any size: resized and cropped) -> ``(B, D)``;
        unit rows when ``normalize``.  Raises TypeError / ValueError for other input."""
        pixels = self.preprocess(_check_images(images).to(self.device))
        features = self._image_features(pixels)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens):
        """``(image_emb (B, D), text_emb (B, D), logit_scale)`` as the course's ``CLIP``."""
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale


class HFCLIP(_Adapter):
    """A Hugging Face ``CLIPModel`` with the course's VLM interface.

    Args:
        model: a ``transformers.CLIPModel``.
        tokenizer: its tokenizer (``CLIPTokenizer``, or any ``PreTrainedTokenizer`` such as the
            word-level one :func:`vlm_course.hub.hf_folder.save_hf_pretrained` writes).
        preprocess: the image preprocessing (``ImagePreprocess.from_hf(image_processor)``).

    ``tokenize(texts)`` returns ``{"input_ids", "attention_mask"}`` (B, L) long, padded to the
    model's context length ``L = max_position_embeddings``.  Raises TypeError for a model that
    is not a ``torch.nn.Module`` or a ``preprocess`` that is not an ``ImagePreprocess``.
    """

    def __init__(self, model: nn.Module, tokenizer, preprocess: ImagePreprocess):
        super().__init__(model, preprocess)
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a callable Hugging Face tokenizer, got "
                            f"{type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.context_length = int(model.config.text_config.max_position_embeddings)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``{"input_ids", "attention_mask"}``: (B, L) long, ``L`` the model's context length.
        Raises TypeError when ``texts`` is not a list of strings."""
        enc = self.tokenizer(_check_texts(texts), padding="max_length", truncation=True,
                             max_length=self.context_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def encode_text(self, tokens, normalize: bool = True) -> torch.Tensor:
        """Tokens from :meth:`tokenize` (or an ``input_ids`` (B, L) tensor) -> ``(B, D)``.
        Raises TypeError for anything else."""
        if torch.is_tensor(tokens):
            tokens = {"input_ids": tokens}
        if not hasattr(tokens, "__getitem__") or "input_ids" not in tokens:
            raise TypeError("tokens must be the dict returned by tokenize() or an input_ids "
                            f"tensor, got {type(tokens).__name__}")
        mask = tokens.get("attention_mask")
        features = _features(self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=None if mask is None else mask.to(self.device)))
        return F.normalize(features, dim=-1) if normalize else features


class OpenCLIP(_Adapter):
    """An ``open_clip`` CLIP with the course's VLM interface.

    Args:
        model: an ``open_clip.CLIP`` (or ``CustomTextCLIP``): ``encode_image``, ``encode_text``,
            ``logit_scale``.
        tokenizer: ``texts -> (B, L) long`` (``open_clip.get_tokenizer(name)``), or a callable
            returning a dict with ``input_ids`` (e.g. a course ``Tokenizer``).
        preprocess: the image preprocessing (``ImagePreprocess.from_open_clip(model)``).

    Raises TypeError as :class:`HFCLIP`.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable, preprocess: ImagePreprocess):
        super().__init__(model, preprocess)
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be callable, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``{"input_ids": (B, L) long}``.  Raises TypeError when ``texts`` is not a list of
        strings."""
        ids = self.tokenizer(_check_texts(texts))
        ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
        return {"input_ids": ids}

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def encode_text(self, tokens, normalize: bool = True) -> torch.Tensor:
        """Tokens from :meth:`tokenize` (or an ``input_ids`` (B, L) tensor) -> ``(B, D)``.
        Raises TypeError for anything else."""
        if not torch.is_tensor(tokens):
            if not hasattr(tokens, "__getitem__") or "input_ids" not in tokens:
                raise TypeError("tokens must be the dict returned by tokenize() or an input_ids "
                                f"tensor, got {type(tokens).__name__}")
            tokens = tokens["input_ids"]
        features = self.model.encode_text(tokens.to(self.device))
        return F.normalize(features, dim=-1) if normalize else features
