"""The one place where transfer methods reach inside a model (chapter 10).

Prompt tuning needs the text tower's *input embeddings*; visual prompt tuning needs the ViT's
token sequence between its stages; LoRA needs the names of the attention projection weights.  The
VLM interface (``tokenize``, ``encode_image``, ``encode_text``, ``logit_scale``) hides all of these,
so every method goes through the small functions below and nowhere else: when a tower renames a
stage, only this module changes.

Supported models: the course's :class:`~vlm_course.models.clip.CLIP` (text tower
:class:`~vlm_course.models.text_encoder.TextEncoder`; image tower
:class:`~vlm_course.models.vit.VisionTransformer` for VPT and image-side LoRA).  Anything else
raises a ``TypeError`` that names the missing piece.

Shapes: B batch, L text length, N patches, D tower width, E joint embedding size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "text_tower", "vit_tower", "token_embeddings", "encode_text_embeddings", "image_tokens",
    "image_blocks", "run_block", "image_pre", "image_head", "attention_projections",
    "tower_module", "encode_image_with", "encode_text_with",
]

TEXT_STAGES = ("token_embedding", "positional_embedding", "forward_features", "pool")
VIT_STAGES = ("patchify", "embed", "ln_pre", "transformer", "forward_head", "class_embedding")
PROJECTIONS = ("q", "k", "v", "o")


def text_tower(model) -> nn.Module:
    """The text tower of ``model`` (``model.text``); TypeError if it lacks the stages CoOp uses."""
    tower = getattr(model, "text", None)
    missing = [s for s in TEXT_STAGES if not hasattr(tower, s)]
    if tower is None or missing:
        raise TypeError("model must be a course CLIP whose text tower (model.text) has "
                        f"{TEXT_STAGES}; {type(model).__name__} lacks "
                        f"{missing or ['model.text']}")
    return tower


def vit_tower(model) -> nn.Module:
    """The ViT image tower of ``model`` (``model.visual``); TypeError for any other tower."""
    tower = getattr(model, "visual", None)
    missing = [s for s in VIT_STAGES if not hasattr(tower, s)]
    if tower is None or missing:
        raise TypeError("model must have a ViT image tower (model.visual with "
                        f"{VIT_STAGES}); got {type(tower).__name__} image tower of "
                        f"{type(model).__name__}")
    return tower


def token_embeddings(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Word embeddings of ``input_ids`` (B, L) long -> (B, L, D) float, *without* positions."""
    tower = text_tower(model)
    tower._check_ids(input_ids)
    return tower.token_embedding(input_ids.to(tower.positional_embedding.device))


def encode_text_embeddings(model, x: torch.Tensor, eot_index: torch.Tensor,
                           normalize: bool = True) -> torch.Tensor:
    """The text tower from its input embeddings: (B, L, D) + (B,) long -> (B, E).

    ``x`` are word embeddings without positions (as :func:`token_embeddings` returns, possibly with
    learned vectors in place of some words); positions are added here, then the causal transformer,
    ``ln_final`` and pooling at ``eot_index`` run as in ``encode_text``.  Unit rows when
    ``normalize``.  Raises ValueError when ``x`` is not (B, L <= context_length, D).
    """
    tower = text_tower(model)
    D, L_max = tower.cfg.width, tower.cfg.context_length
    if x.dim() != 3 or x.shape[1] > L_max or x.shape[2] != D:
        raise ValueError(f"x must have shape (B, L <= {L_max}, D={D}), got {tuple(x.shape)}")
    L = x.shape[1]
    x = x + tower.positional_embedding[:L].to(x.dtype)
    features = tower.pool(tower.forward_features(x), eot_index)
    return F.normalize(features, dim=-1) if normalize else features


def image_tokens(model, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float -> (B, 1 + N, D): class token first, position embeddings added."""
    tower = vit_tower(model)
    if not torch.is_tensor(images) or not images.is_floating_point():
        raise TypeError(f"images must be a float tensor (B, 3, H, W), got "
                        f"{getattr(images, 'dtype', type(images).__name__)}")
    return tower.embed(tower.patchify(images.to(tower.class_embedding.device)))


def image_pre(model, tokens: torch.Tensor) -> torch.Tensor:
    """The norm applied before the first block (CLIP's ``ln_pre``): (B, n, D) -> (B, n, D)."""
    return vit_tower(model).ln_pre(tokens)


def image_blocks(model) -> list[nn.Module]:
    """The ViT's transformer blocks, in order."""
    return list(vit_tower(model).transformer.resblocks)


def run_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One transformer block on (B, n, D) tokens -> (B, n, D)."""
    return block(x)[0]


def image_head(model, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """The ViT head (``forward_head``) on the tokens after the blocks: (B, 1 + n, D) -> (B, E).

    ``ln_post`` on the class token (position 0) and the projection; unit rows when ``normalize``.
    """
    features = vit_tower(model).forward_head(tokens)
    return F.normalize(features, dim=-1) if normalize else features


def attention_projections(model, tower: str,
                          targets: tuple[str, ...]) -> list[tuple[str, slice, int]]:
    """Where LoRA goes: the attention projection weights of ``tower`` (``"image"``/``"text"``).

    Returns ``(name, rows, in_features)`` triples: ``name`` is a parameter name relative to the
    tower module (``tower_module(model, tower)``), ``rows`` the slice of that weight's output rows
    that forms the projection (the course packs q, k, v into one ``in_proj_weight`` (3D, D)), so
    target ``"q"`` is rows ``0:D`` of ``in_proj_weight``, ``"v"`` rows ``2D:3D``, ``"o"`` the whole
    ``out_proj.weight``.  Raises ValueError for an unknown tower or target.
    """
    if not isinstance(targets, (tuple, list)) or not targets or any(
            t not in PROJECTIONS for t in targets) or len(set(targets)) != len(targets):
        raise ValueError(f"targets must be distinct names from {PROJECTIONS}, got {targets!r}")
    module = tower_module(model, tower)
    out = []
    for i, block in enumerate(module.transformer.resblocks):
        D = block.attn.dim
        prefix = f"transformer.resblocks.{i}.attn."
        for t in targets:
            if t == "o":
                out.append((prefix + "out_proj.weight", slice(0, D), D))
            else:
                k = "qkv".index(t)
                out.append((prefix + "in_proj_weight", slice(k * D, (k + 1) * D), D))
    return out


def tower_module(model, tower: str) -> nn.Module:
    """``model.visual`` for ``"image"`` (a ViT), ``model.text`` for ``"text"``."""
    if tower == "image":
        return vit_tower(model)
    if tower == "text":
        return text_tower(model)
    raise ValueError(f"tower must be 'image' or 'text', got {tower!r}")


def encode_image_with(model, weights: dict[str, torch.Tensor], images: torch.Tensor,
                      normalize: bool = True) -> torch.Tensor:
    """``encode_image`` with some ViT weights replaced: (B, 3, H, W) -> (B, E).

    ``weights`` maps parameter names relative to the image tower (as
    :func:`attention_projections` gives them) to tensors used *instead* of the stored ones for
    this call only (:func:`torch.func.functional_call`); the model itself is not modified.
    """
    tower = vit_tower(model)
    images = images.to(tower.class_embedding.device)
    features = torch.func.functional_call(tower, weights, (images,), strict=False)
    return F.normalize(features, dim=-1) if normalize else features


def encode_text_with(model, weights: dict[str, torch.Tensor], tokens: dict,
                     normalize: bool = True) -> torch.Tensor:
    """``encode_text`` with some text-tower weights replaced (see :func:`encode_image_with`):
    tokens from ``model.tokenize`` -> (B, E)."""
    tower = text_tower(model)
    device = tower.positional_embedding.device
    args = tuple(tokens[k].to(device) for k in ("input_ids", "attention_mask", "eot_index"))
    features = torch.func.functional_call(tower, weights, args, strict=False)
    return F.normalize(features, dim=-1) if normalize else features
