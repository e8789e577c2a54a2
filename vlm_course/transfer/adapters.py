"""Feature adapters: CLIP-Adapter, Tip-Adapter and Tip-Adapter-F (chapter 10).

Instead of changing the prompt or the encoder, an adapter works on the frozen embeddings.

**CLIP-Adapter** (Gao et al. 2024, IJCV) puts a small bottleneck MLP
``A(f) = ReLU(W_2 ReLU(W_1 f))`` (reduction 4) after the image encoder and blends it with the
original feature through a residual ratio: ``f' = ratio * A(f) + (1 - ratio) * f``.  Only
``W_1, W_2`` train; the classifier is the frozen zero-shot text classifier.  ``ratio = 0`` is
zero-shot CLIP (tested); the paper's 0.2 keeps most of the pre-trained knowledge.

**Tip-Adapter** (Zhang et al. 2022, ECCV) needs no training at all.  It builds a key-value *cache*
from the few-shot set: keys ``F`` = the (N, E) normalised image features, values ``Y`` = their
(N, K) one-hot labels.  A test feature ``f`` looks itself up with the affinity
``A = exp(-beta (1 - f F^T))`` (a sharpened cosine similarity in (0, 1]) and the cache's vote is
added to the zero-shot logits::

    logits = scale * f W^T + alpha * A Y

``alpha`` weighs the cache against the zero-shot knowledge (``alpha = 0`` is zero-shot, tested),
``beta`` sets how sharply near neighbours dominate.  **Tip-Adapter-F** unfreezes the keys and
fine-tunes them (initialised from the cache, so it starts where Tip-Adapter is), which converges
in a few epochs.  The paper uses CLIP's fixed scale of 100 for the zero-shot term; here the
model's own ``exp(logit_scale)`` is used, so good ``alpha`` values differ from the paper's:
:meth:`TipAdapter.search` picks ``alpha, beta`` on a held-out few-shot set, as the paper does.

Shapes: B batch, N cache entries (K classes x k shots), E joint embedding size, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import DEFAULT_TEMPLATES, FrozenVLM

__all__ = ["CLIPAdapterConfig", "CLIPAdapter", "TipAdapterConfig", "TipAdapter", "cache_logits"]


@dataclass
class CLIPAdapterConfig:
    """Bottleneck width ``E // reduction``; residual blend ``ratio`` in [0, 1]."""

    reduction: int = 4
    ratio: float = 0.2
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    @classmethod
    def tiny(cls) -> CLIPAdapterConfig:
        return cls(reduction=8)


class CLIPAdapter(FrozenVLM):
    """CLIP-Adapter (Gao et al.; chapter 10) on the image features of a frozen VLM.

    Trainable: ``adapter`` (E -> E/r -> E, no biases, ReLU after each layer, as the paper).
    ``adapt(image_emb (B, E)) -> (B, E)`` unit rows; ``logits_from_features(image_emb) -> (B, K)``.
    Raises ValueError for ``ratio`` outside [0, 1] or ``reduction`` < 1.
    """

    uses_image_features = True

    def __init__(self, model, classnames: Sequence[str], config: CLIPAdapterConfig | None = None):
        config = CLIPAdapterConfig() if config is None else config
        super().__init__(model, classnames, config.templates)
        self.config = config
        r = config.reduction
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"reduction must be an int >= 1, got {r!r}")
        if isinstance(config.ratio, bool) or not isinstance(config.ratio, (int, float)) or not \
                0.0 <= config.ratio <= 1.0:
            raise ValueError(f"ratio must be a number in [0, 1], got {config.ratio!r}")
        E = self.text_weights.shape[1]
        self.adapter = nn.Sequential(nn.Linear(E, max(1, E // r), bias=False), nn.ReLU(),
                                     nn.Linear(max(1, E // r), E, bias=False), nn.ReLU())
        self.to(self.device)

    def adapt(self, image_emb: torch.Tensor) -> torch.Tensor:
        """(B, E) -> (B, E) unit rows: ``normalize(ratio * A(f) + (1 - ratio) * f)``."""
        r = float(self.config.ratio)
        return F.normalize(r * self.adapter(image_emb) + (1.0 - r) * image_emb, dim=-1)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        image_emb = self.check_features(image_emb)
        return self.scale * self.adapt(image_emb) @ self.text_weights.T


def cache_logits(image_emb: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                 beta: float) -> torch.Tensor:
    """Tip-Adapter's cache vote ``exp(-beta (1 - f K^T)) @ V``.

    image_emb: (B, E) unit rows; keys: (N, E) (unit rows when built from features);
    values: (N, K) one-hot float.  Returns (B, K) non-negative.  Raises ValueError for mismatched
    shapes.
    """
    if image_emb.dim() != 2 or keys.dim() != 2 or image_emb.shape[1] != keys.shape[1]:
        raise ValueError(f"image_emb (B, E) and keys (N, E) must share E, got "
                         f"{tuple(image_emb.shape)} and {tuple(keys.shape)}")
    if values.dim() != 2 or values.shape[0] != keys.shape[0]:
        raise ValueError(f"values must have shape (N={keys.shape[0]}, K), "
                         f"got {tuple(values.shape)}")
    affinity = image_emb @ keys.T  # (B, N) cosine similarity to every cached image
    return torch.exp(-beta * (1.0 - affinity)) @ values


@dataclass
class TipAdapterConfig:
    """Cache weight ``alpha`` >= 0, sharpness ``beta`` > 0; ``fine_tune`` makes it
    Tip-Adapter-F (the cache keys become trainable)."""

    alpha: float = 1.0
    beta: float = 5.0
    fine_tune: bool = False
    templates: tuple[str, ...] = DEFAULT_TEMPLATES


def _check_alpha_beta(alpha, beta) -> None:
    for name, value, ok in (("alpha", alpha, lambda v: v >= 0), ("beta", beta, lambda v: v > 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
            raise ValueError(f"{name} must be a number {'>= 0' if name == 'alpha' else '> 0'}, "
                             f"got {value!r}")


class TipAdapter(FrozenVLM):
    """Tip-Adapter / Tip-Adapter-F (Zhang et al. 2022, ECCV; chapter 10).

    ``TipAdapter(model, classnames, train_features (N, E), train_labels (N,) long, config)``;
    the features are normalised here.  Buffers ``values`` (N, K) one-hot; ``keys`` (N, E) is a
    buffer (training-free) or a trainable parameter (``fine_tune=True``).
    ``logits_from_features(image_emb (B, E)) -> (B, K)`` as in the module docstring.
    The cache is tied to the training classes: :meth:`set_classnames` raises ValueError.
    Raises ValueError for mismatched features/labels, labels outside ``[0, K)``, or bad
    ``alpha``/``beta``.
    """

    uses_image_features = True

    def __init__(self, model, classnames: Sequence[str], train_features: torch.Tensor,
                 train_labels: torch.Tensor, config: TipAdapterConfig | None = None):
        config = TipAdapterConfig() if config is None else config
        super().__init__(model, classnames, config.templates)
        _check_alpha_beta(config.alpha, config.beta)
        self.config = config
        K = self.num_classes
        if not torch.is_tensor(train_features) or train_features.dim() != 2 or \
                train_features.shape[1] != self.text_weights.shape[1]:
            raise ValueError(f"train_features must be (N, E={self.text_weights.shape[1]}), got "
                             f"{getattr(train_features, 'shape', type(train_features).__name__)}")
        if not torch.is_tensor(train_labels) or train_labels.shape != train_features.shape[:1] \
                or train_labels.dtype != torch.long:
            raise ValueError(f"train_labels must be a long tensor of shape "
                             f"(N={train_features.shape[0]},), got "
                             f"{getattr(train_labels, 'shape', type(train_labels).__name__)}")
        if train_labels.numel() and (train_labels.min() < 0 or train_labels.max() >= K):
            raise ValueError(f"train_labels must lie in [0, K={K}), got min "
                             f"{int(train_labels.min())}, max {int(train_labels.max())}")
        keys = F.normalize(train_features.detach().float(), dim=-1).to(self.device)
        self.register_buffer("values", F.one_hot(train_labels, K).float().to(self.device))
        if config.fine_tune:
            self.keys = nn.Parameter(keys.clone())
        else:
            self.register_buffer("keys", keys)
        self.alpha, self.beta = float(config.alpha), float(config.beta)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        raise ValueError("classnames cannot change: the cache's values are one-hot labels of the "
                         "training classes")

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        image_emb = self.check_features(image_emb)
        zero_shot = self.scale * image_emb @ self.text_weights.T
        return zero_shot + self.alpha * cache_logits(image_emb, self.keys, self.values, self.beta)

    @torch.no_grad()
    def search(self, val_features: torch.Tensor, val_labels: torch.Tensor,
               alphas: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
               betas: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)) -> dict[str, float]:
        """Set ``alpha, beta`` to the pair with the best accuracy on a held-out set.

        val_features: (V, E); val_labels: (V,) long.  Ties go to the first pair in grid order.
        Returns ``{"alpha", "beta", "accuracy"}``.  Raises ValueError for an empty grid or
        mismatched shapes.
        """
        val_features = F.normalize(self.check_features(val_features).float(), dim=-1)
        if val_labels.shape != val_features.shape[:1]:
            raise ValueError(f"val_labels must have shape (V={val_features.shape[0]},), got "
                             f"{tuple(val_labels.shape)}")
        if not alphas or not betas:
            raise ValueError(f"alphas and betas must be non-empty, got {alphas!r}, {betas!r}")
        labels = val_labels.to(self.device)
        zero_shot = self.scale * val_features @ self.text_weights.T
        best = (-1.0, 0.0, 1.0)
        for beta in betas:
            vote = cache_logits(val_features, self.keys, self.values, beta)
            for alpha in alphas:
                _check_alpha_beta(alpha, beta)
                acc = float(((zero_shot + alpha * vote).argmax(1) == labels).float().mean())
                if acc > best[0]:
                    best = (acc, float(alpha), float(beta))
        self.alpha, self.beta = best[1], best[2]
        return {"alpha": best[1], "beta": best[2], "accuracy": best[0]}
