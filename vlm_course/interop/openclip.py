"""State-dict converters between the course's CLIP / towers and OpenCLIP (``open_clip``).

Chapter 02 and 04.  The course kept OpenCLIP's parameter names wherever the layout is the same
(``transformer.resblocks.i.attn.in_proj_weight`` -- a packed ``(3D, D)`` q/k/v projection in both
--, ``ln_pre``, ``ln_post``, ``proj``, ``text_projection``, ``attnpool`` parameters), so most keys
only move between prefixes.  What differs:

* ViT patch embedding: OpenCLIP's stride-P ``conv1.weight`` ``(D, C, P, P)`` vs the course's
  ``patch_embed.weight`` ``(D, P*P*C)`` on patchified pixels (rows, columns, channels);
* ModifiedResNet's stem ``conv1/bn1 .. conv3/bn3`` vs ``stem.0 .. stem.7``, ``layerK`` vs
  ``stages.K-1``, ``attnpool`` vs ``pool``;
* ``open_clip.CLIP`` keeps the text tower at the top level (``token_embedding``, ``transformer``,
  ``ln_final``, ``text_projection``); the course's ``CLIP`` keeps it under ``text.``.

``open_clip_config(config)`` gives the ``open_clip.CLIP`` constructor arguments of a course
``CLIPConfig`` (pooling at the course's ``[EOS]`` id, ``pool_type="eos"``).
All functions take and return ``{name: tensor}`` dicts (weights or gradients); none imports
``open_clip`` except :func:`open_clip_config` and :func:`build_open_clip`.
"""

from __future__ import annotations

import torch

__all__ = ["conv_patch_to_linear", "linear_patch_to_conv", "vit_from_open_clip",
           "vit_to_open_clip", "resnet_from_open_clip", "resnet_to_open_clip", "from_open_clip",
           "to_open_clip", "open_clip_config", "build_open_clip"]

Tensors = dict[str, torch.Tensor]
_STEM = {"conv1": 0, "bn1": 1, "conv2": 3, "bn2": 4, "conv3": 6, "bn3": 7}
_TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.",
              "text_projection", "attn_mask")


def conv_patch_to_linear(weight: torch.Tensor) -> torch.Tensor:
    """Stride-P conv weight ``(D, C, P, P)`` -> Linear weight ``(D, P*P*C)`` in patchify order.

    Raises ValueError unless ``weight`` is 4-D with square kernels.
    """
    if weight.dim() != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"weight must have shape (D, C, P, P), got {tuple(weight.shape)}")
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def linear_patch_to_conv(weight: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`conv_patch_to_linear`: ``(D, P*P*C) -> (D, C, P, P)``.

    Raises ValueError unless ``weight`` is ``(D, patch_size**2 * channels)``.
    """
    P, C = patch_size, channels
    if weight.dim() != 2 or weight.shape[1] != P * P * C:
        raise ValueError(f"weight must have shape (D, P*P*C={P * P * C}), "
                         f"got {tuple(weight.shape)}")
    return weight.reshape(weight.shape[0], P, P, C).permute(0, 3, 1, 2).contiguous()


def vit_from_open_clip(state: Tensors) -> Tensors:
    """``open_clip.transformer.VisionTransformer`` state -> course ``VisionTransformer`` state.

    Raises ValueError when ``state`` has no ``conv1.weight`` (not an OpenCLIP ViT).
    """
    out = dict(state)
    if "conv1.weight" not in out:
        raise ValueError(f"state must hold 'conv1.weight' (an OpenCLIP ViT), got keys "
                         f"{sorted(out)[:5]}...")
    out["patch_embed.weight"] = conv_patch_to_linear(out.pop("conv1.weight"))
    return out


def vit_to_open_clip(state: Tensors, patch_size: int, channels: int = 3) -> Tensors:
    """Course ``VisionTransformer`` state -> ``open_clip`` ``VisionTransformer`` state."""
    out = dict(state)
    out["conv1.weight"] = linear_patch_to_conv(out.pop("patch_embed.weight"), patch_size, channels)
    return out


def resnet_from_open_clip(state: Tensors) -> Tensors:
    """``open_clip.modified_resnet.ModifiedResNet`` state -> course ``ResNet`` state."""
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in _STEM:
            key = f"stem.{_STEM[head]}.{rest}"
        elif head.startswith("layer"):
            key = f"stages.{int(head[5:]) - 1}.{rest}"
        elif head == "attnpool":
            key = f"pool.{rest}"
        out[key] = value
    return out


def resnet_to_open_clip(state: Tensors) -> Tensors:
    """Course ``ResNet`` state -> ``ModifiedResNet`` state (inverse of the above)."""
    stem = {i: name for name, i in _STEM.items()}
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head == "stem":
            i, _, rest = rest.partition(".")
            key = f"{stem[int(i)]}.{rest}"
        elif head == "stages":
            i, _, rest = rest.partition(".")
            key = f"layer{int(i) + 1}.{rest}"
        elif head == "pool":
            key = f"attnpool.{rest}"
        out[key] = value
    return out


def _split(state: Tensors, prefix: str) -> Tensors:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def from_open_clip(state: Tensors) -> Tensors:
    """``open_clip.CLIP`` state -> course ``CLIP`` state (ViT or ModifiedResNet image tower).

    Raises ValueError when ``state`` has keys that belong to neither tower.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("visual.") or key.startswith("attn_mask"):
            continue
        if key == "logit_scale":
            out[key] = value
        elif key.startswith(_TEXT_KEYS):
            out[f"text.{key}"] = value
        else:
            raise ValueError(f"state has a key that no course tower holds: {key!r}")
    visual = _split(state, "visual.")
    if visual:
        is_resnet = any(k.startswith("attnpool.") for k in visual)
        visual = resnet_from_open_clip(visual) if is_resnet else vit_from_open_clip(visual)
        out.update({f"visual.{k}": v for k, v in visual.items()})
    return out


def to_open_clip(state: Tensors, config) -> Tensors:
    """Course ``CLIP`` state of ``config`` (a ``CLIPConfig``) -> ``open_clip.CLIP`` state.

    Raises ValueError when ``state`` has keys outside ``visual.``, ``text.`` and ``logit_scale``.
    """
    visual = _split(state, "visual.")
    if config.image_tower == "resnet":
        visual = resnet_to_open_clip(visual)
    else:
        visual = vit_to_open_clip(visual, config.vision.patch_size, config.vision.in_channels)
    out = {f"visual.{k}": v for k, v in visual.items()}
    for key, value in state.items():
        if key.startswith("text."):
            out[key[len("text."):]] = value
        elif key == "logit_scale":
            out[key] = value
        elif not key.startswith("visual."):
            raise ValueError(f"state has a key outside visual./text./logit_scale: {key!r}")
    return out


def open_clip_config(config) -> dict:
    """Keyword arguments of ``open_clip.CLIP`` for a course ``CLIPConfig`` (imports open_clip).

    Raises ValueError for what OpenCLIP's CLIP cannot express: post-norm blocks, towers with
    different activations, LayerNorm eps other than 1e-5, a text tower without ``eos_id``, or a
    ResNet that is not OpenCLIP's ModifiedResNet (4 bottleneck stages, ResNet-D, attention
    pooling, square images).
    """
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    v, t = config.vision, config.text
    v_act = getattr(v, "activation", t.activation)  # a ResNet has no transformer activation
    if v_act != t.activation:
        raise ValueError("config.vision.activation and config.text.activation must agree for "
                         f"open_clip, got {v_act!r} and {t.activation!r}")
    if t.ln_eps != 1e-5 or getattr(v, "ln_eps", 1e-5) != 1e-5:
        raise ValueError(f"ln_eps must be 1e-5 for open_clip, got {getattr(v, 'ln_eps', None)} "
                         f"and {t.ln_eps}")
    if t.eos_id is None:
        raise ValueError("config.text.eos_id must be set (open_clip pools at that id)")
    if config.image_tower == "resnet":
        ok = (len(v.layers) == 4 and v.block == "bottleneck" and v.resnet_d and v.skip
              and v.pool == "attention" and isinstance(v.image_size, int))
        if not ok:
            raise ValueError("config.vision must be a ModifiedResNet for open_clip: 4 bottleneck "
                             "stages, resnet_d, skip, pool='attention', a square int image_size;"
                             f" got {v}")
        vision = CLIPVisionCfg(layers=tuple(v.layers), width=v.width,
                               head_width=v.feature_dim // v.heads, image_size=v.image_size)
    else:
        if not v.norm_first:
            raise ValueError("config.vision.norm_first must be True for open_clip")
        vision = CLIPVisionCfg(layers=v.layers, width=v.width, head_width=v.width // v.heads,
                               mlp_ratio=v.mlp_ratio, patch_size=v.patch_size,
                               image_size=v.image_size)
    text = CLIPTextCfg(context_length=t.context_length, vocab_size=t.vocab_size, width=t.width,
                       heads=t.heads, layers=t.layers, mlp_ratio=t.mlp_ratio, pool_type="eos",
                       eos_id=t.eos_id)
    return {"embed_dim": config.embed_dim, "vision_cfg": vision, "text_cfg": text,
            "quick_gelu": t.activation == "quick_gelu",
            "init_logit_scale": float(config.init_logit_scale)}


def build_open_clip(config, state: Tensors | None = None):
    """An ``open_clip.CLIP`` with the sizes of ``config``; with ``state`` (a course ``CLIP``
    state dict) its weights too.  Imports open_clip; raises as :func:`open_clip_config`."""
    import open_clip

    model = open_clip.CLIP(**open_clip_config(config))
    if state is not None:
        model.load_state_dict(to_open_clip(state, config))
    return model
