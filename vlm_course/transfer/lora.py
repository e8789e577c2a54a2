"""LoRA: low-rank updates of the attention projections of a frozen VLM (chapter 10).

Hu et al. 2022 ("LoRA: Low-rank adaptation of large language models") freeze a pre-trained weight
``W`` (out x in) and learn its change as a product of two thin matrices::

    W' = W + (alpha / r) * B A,      A: (r, in),  B: (out, r),  r << min(in, out)

``A`` starts random (Kaiming-uniform, as Hugging Face ``peft``), ``B`` starts at zero, so training
starts exactly at the pre-trained model.  Only ``r (in + out)`` numbers per adapted matrix train,
and after training ``B A`` can be *merged* into ``W``: the adapted model then costs nothing extra
at inference (tested: merged and unmerged outputs agree).  The LoRA paper adapts the query and
value projections of every attention layer, the default here.

Two forms:

* :class:`LoRALinear` wraps one ``nn.Linear``: ``y = base(x) + (alpha / r) B A x`` — the layer
  ``peft`` implements (equal outputs and gradients, tested against ``peft``);
* :class:`LoRA` adapts a whole VLM tower (image, text or both).  The course packs q, k and v into
  one ``in_proj_weight`` (3D, D), so "q" is rows ``0:D`` of it and "v" rows ``2D:3D``; each target
  gets its own ``A, B``.  The forward pass calls the tower with the effective weights ``W + dW``
  substituted for this call only (:func:`torch.func.functional_call`): the VLM is never modified.

Shapes: B batch, D width, r rank, K classes, E joint embedding size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import DEFAULT_TEMPLATES, FrozenVLM
from .internals import attention_projections, encode_image_with, encode_text_with, tower_module

__all__ = ["lora_delta", "LoRALinear", "LoRAConfig", "LoRA"]

TOWERS = {"image": ("image",), "text": ("text",), "both": ("image", "text")}


def lora_delta(lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float) -> torch.Tensor:
    """The weight change ``scaling * B @ A``: A (r, in), B (out, r) -> (out, in)."""
    if lora_A.dim() != 2 or lora_B.dim() != 2 or lora_A.shape[0] != lora_B.shape[1]:
        raise ValueError(f"lora_A must be (r, in) and lora_B (out, r) with the same r, got "
                         f"{tuple(lora_A.shape)} and {tuple(lora_B.shape)}")
    return scaling * (lora_B @ lora_A)


def _check_rank_alpha(rank, alpha) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be an int >= 1, got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a number > 0, got {alpha!r}")


def _init_pair(rank: int, in_features: int, out_features: int) -> tuple[nn.Parameter, ...]:
    """``A`` Kaiming-uniform (a = sqrt(5), as ``nn.Linear`` and ``peft``), ``B`` zeros."""
    lora_A = nn.Parameter(torch.empty(rank, in_features))
    nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5))
    return lora_A, nn.Parameter(torch.zeros(out_features, rank))


class LoRALinear(nn.Module):
    """LoRA on one ``nn.Linear`` (frozen): ``y = base(x) + (alpha / rank) * B A x``.

    ``lora_A`` (rank, in), ``lora_B`` (out, rank); ``merged()`` returns a plain ``nn.Linear``
    with the weight ``W + (alpha / rank) B A``.  Raises TypeError when ``base`` is not an
    ``nn.Linear``, ValueError for ``rank`` < 1 or ``alpha`` <= 0.
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        _check_rank_alpha(rank, alpha)
        self.base = base.requires_grad_(False)
        self.scaling = alpha / rank
        self.lora_A, self.lora_B = _init_pair(rank, base.in_features, base.out_features)
        self.to(base.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A new ``nn.Linear`` computing the same function with the update merged in."""
        out = copy.deepcopy(self.base)
        out.weight += lora_delta(self.lora_A, self.lora_B, self.scaling).to(out.weight.dtype)
        return out


@dataclass
class LoRAConfig:
    """LoRA on the ``targets`` projections (from "q", "k", "v", "o") of every attention layer of
    the ``tower`` ("image", "text" or "both"), rank ``rank``, scaling ``alpha / rank``."""

    rank: int = 4
    alpha: float = 8.0
    targets: tuple[str, ...] = ("q", "v")
    tower: str = "image"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    @classmethod
    def tiny(cls) -> LoRAConfig:
        return cls(rank=2)


class LoRA(FrozenVLM):
    """LoRA (Hu et al. 2022, ICLR; chapter 10) on a frozen VLM's attention projections.

    Trainable: ``lora_A[i]`` (r, in) and ``lora_B[i]`` (rows, r) for each adapted projection
    ``sites[i] = (tower, weight name, rows)``.  ``encode_image(images) -> (B, E)`` and
    ``text_classifier() -> (K, E)`` (unit rows; the frozen prompt classifier when the text tower is
    not adapted); ``forward(images) -> (B, K)`` logits.  ``effective_weights(tower)`` gives
    ``{name: W + dW}``; ``merge_into(model)`` writes them into a model (use a copy).
    Raises ValueError for a bad rank, alpha, tower or target, TypeError for a model whose towers
    the course cannot adapt.
    """

    def __init__(self, model, classnames: Sequence[str], config: LoRAConfig | None = None):
        config = LoRAConfig() if config is None else config
        super().__init__(model, classnames, config.templates)
        _check_rank_alpha(config.rank, config.alpha)
        if config.tower not in TOWERS:
            raise ValueError(f"tower must be one of {tuple(TOWERS)}, got {config.tower!r}")
        self.config = config
        self.towers = TOWERS[config.tower]
        self.scaling = config.alpha / config.rank
        self.sites: list[tuple[str, str, slice]] = []
        self.lora_A, self.lora_B = nn.ParameterList(), nn.ParameterList()
        for tower in self.towers:
            for name, rows, in_features in attention_projections(model, tower, config.targets):
                lora_A, lora_B = _init_pair(config.rank, in_features, rows.stop - rows.start)
                self.sites.append((tower, name, rows))
                self.lora_A.append(lora_A)
                self.lora_B.append(lora_B)
        self.uses_image_features = "image" not in self.towers
        self._prompt_tokens = None
        if "text" in self.towers:
            prompts = [t.format(c) for c in self.classnames for t in self.templates]
            self._prompt_tokens = model.tokenize(prompts)
        self.to(self.device)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        super().set_classnames(classnames)
        if "text" in self.towers:
            prompts = [t.format(c) for c in self.classnames for t in self.templates]
            self._prompt_tokens = self.vlm.tokenize(prompts)

    def effective_weights(self, tower: str) -> dict[str, torch.Tensor]:
        """``{name: W + scaling * B A}`` for the adapted weights of ``tower`` (differentiable)."""
        stored = dict(tower_module(self.vlm, tower).named_parameters())
        out: dict[str, torch.Tensor] = {}
        pairs = zip(self.sites, self.lora_A, self.lora_B, strict=True)
        for (site_tower, name, rows), lora_A, lora_B in pairs:
            if site_tower != tower:
                continue
            W = out.get(name, stored[name])
            delta = lora_delta(lora_A, lora_B, self.scaling).to(W.dtype)  # (rows, in)
            # place the update on its rows of the (packed) weight: (rows, in) -> (out, in)
            out[name] = W + F.pad(delta, (0, 0, rows.start, W.shape[0] - rows.stop))
        return out

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float -> (B, E) unit rows, with the adapted image tower."""
        if "image" not in self.towers:
            return self.vlm.encode_image(images.to(self.device))
        if not torch.is_tensor(images) or images.dim() != 4:
            raise ValueError("images must be a float tensor (B, 3, H, W), got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        return encode_image_with(self.vlm, self.effective_weights("image"), images)

    def text_classifier(self) -> torch.Tensor:
        """(K, E) unit rows: the prompt-ensemble classifier through the (adapted) text tower."""
        if "text" not in self.towers:
            return self.text_weights
        emb = encode_text_with(self.vlm, self.effective_weights("text"), self._prompt_tokens)
        K, T = self.num_classes, len(self.templates)
        return F.normalize(F.normalize(emb, dim=-1).view(K, T, -1).mean(1), dim=-1)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        if "image" in self.towers:
            return super().logits_from_features(image_emb)  # NotImplementedError: needs images
        return self.scale * self.check_features(image_emb) @ self.text_classifier().T

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.encode_image(images) @ self.text_classifier().T

    @torch.no_grad()
    def merge_into(self, model: nn.Module) -> nn.Module:
        """Write ``W + dW`` into ``model``'s weights in place (pass a copy of the VLM, e.g.
        ``copy.deepcopy(lora.vlm)``); returns it.  The merged model alone then computes what this
        LoRA computes."""
        for tower in self.towers:
            target = dict(tower_module(model, tower).named_parameters())
            for name, weight in self.effective_weights(tower).items():
                target[name].copy_(weight)
        return model
