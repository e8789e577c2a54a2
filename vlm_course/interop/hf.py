"""State-dict converters between the course's CLIP / towers and Hugging Face ``CLIPModel``.

Chapter 02 and 04.  Hugging Face's CLIP is the same network under other names, with two layout
differences and one pooling rule to respect:

* attention: separate ``q_proj`` / ``k_proj`` / ``v_proj`` ``(D, D)`` vs the course's packed
  ``in_proj_weight`` ``(3D, D)`` (rows q, then k, then v); MLP ``fc1/fc2`` vs ``c_fc/c_proj``;
* projections: ``visual_projection`` / ``text_projection`` are ``nn.Linear`` weights
  ``(D_out, D)``, the course's ``proj`` / ``text_projection`` are ``(D, D_out)`` matrices;
  the patch embedding is a stride-P convolution (see :mod:`.openclip`);
* text pooling: ``CLIPTextTransformer`` pools at the first ``eos_token_id`` -- *except* when
  ``eos_token_id == 2``, where it keeps a legacy rule and pools at the largest token id.  The
  course tokenizer's ``[EOS]`` is id 2, so :func:`to_hf` moves ``[EOS]`` to the last id
  ``V - 1`` (swapping it with the word there): :func:`token_id_map` gives the mapping,
  :func:`hf_input_ids` applies it to token ids, and :func:`hf_config` sets
  ``eos_token_id = V - 1``.  (A tiny ``CLIPTextConfig`` also defaults to ``eos_token_id=49407``,
  outside a small vocabulary, so HF would pool position 0: always set it.)

All converters take and return ``{name: tensor}`` dicts (weights or gradients); only
:func:`hf_config` and :func:`build_hf` import ``transformers``.
"""

from __future__ import annotations

import torch

from .openclip import conv_patch_to_linear, linear_patch_to_conv

__all__ = ["token_id_map", "hf_input_ids", "layers_from_hf", "layers_to_hf", "vit_from_hf",
           "vit_to_hf", "text_from_hf", "text_to_hf", "from_hf", "to_hf", "hf_config", "build_hf"]

Tensors = dict[str, torch.Tensor]
_LAYER = (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"),
          ("mlp.c_proj", "mlp.fc2"), ("attn.out_proj", "self_attn.out_proj"))


def token_id_map(vocab_size: int, eos_id: int) -> torch.Tensor:
    """``(V,)`` long: the Hugging Face id of each course token id.

    The identity, except that ``eos_id == 2`` is swapped with ``V - 1`` (HF's legacy pooling
    rule for ``eos_token_id == 2``, see the module docstring).  The map is its own inverse.
    Raises ValueError unless ``0 <= eos_id < vocab_size`` and ``vocab_size > 3``.
    """
    if vocab_size <= 3 or not 0 <= eos_id < vocab_size:
        raise ValueError(f"eos_id must lie in [0, vocab_size={vocab_size}) with vocab_size > 3, "
                         f"got eos_id={eos_id}")
    ids = torch.arange(vocab_size)
    if eos_id == 2:
        ids[2], ids[vocab_size - 1] = vocab_size - 1, 2
    return ids


def hf_input_ids(input_ids: torch.Tensor, vocab_size: int, eos_id: int) -> torch.Tensor:
    """Course token ids ``(B, L)`` -> the ids a model converted by :func:`to_hf` expects."""
    return token_id_map(vocab_size, eos_id).to(input_ids.device)[input_ids]


def layers_from_hf(state: Tensors, prefix: str) -> Tensors:
    """HF encoder layers under ``prefix`` (``"vision_model."``) -> ``transformer.resblocks``."""
    out, i = {}, 0
    while f"{prefix}encoder.layers.{i}.layer_norm1.weight" in state:
        src, dst = f"{prefix}encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{p}"] = torch.cat(
                [state[f"{src}self_attn.{n}_proj.{p}"] for n in "qkv"])  # 3 x (D, .) -> (3D, .)
            for ours, theirs in _LAYER:
                out[f"{dst}{ours}.{p}"] = state[f"{src}{theirs}.{p}"]
        i += 1
    return out


def layers_to_hf(state: Tensors, prefix: str) -> Tensors:
    """Inverse of :func:`layers_from_hf`: ``transformer.resblocks.i.*`` -> HF encoder layers."""
    out, i = {}, 0
    while f"transformer.resblocks.{i}.ln_1.weight" in state:
        src, dst = f"transformer.resblocks.{i}.", f"{prefix}encoder.layers.{i}."
        for p in ("weight", "bias"):
            q, k, v = state[f"{src}attn.in_proj_{p}"].chunk(3)  # (3D, .) -> 3 x (D, .)
            for n, t in zip("qkv", (q, k, v), strict=True):
                out[f"{dst}self_attn.{n}_proj.{p}"] = t
            for ours, theirs in _LAYER:
                out[f"{dst}{theirs}.{p}"] = state[f"{src}{ours}.{p}"]
        i += 1
    return out


def vit_from_hf(state: Tensors, prefix: str = "vision_model.",
                proj_key: str = "visual_projection.weight") -> Tensors:
    """HF ``CLIPVisionModelWithProjection`` / ``CLIPModel`` vision keys -> course ViT state."""
    e = f"{prefix}embeddings."
    out = layers_from_hf(state, prefix)
    out.update({
        "patch_embed.weight": conv_patch_to_linear(state[f"{e}patch_embedding.weight"]),
        "class_embedding": state[f"{e}class_embedding"],
        "positional_embedding": state[f"{e}position_embedding.weight"],
        "ln_pre.weight": state[f"{prefix}pre_layrnorm.weight"],  # (sic, HF's spelling)
        "ln_pre.bias": state[f"{prefix}pre_layrnorm.bias"],
        "ln_post.weight": state[f"{prefix}post_layernorm.weight"],
        "ln_post.bias": state[f"{prefix}post_layernorm.bias"],
        "proj": state[proj_key].T,  # Linear (D_out, D) -> matrix (D, D_out)
    })
    return out


def vit_to_hf(state: Tensors, patch_size: int, channels: int = 3, prefix: str = "vision_model.",
              proj_key: str = "visual_projection.weight") -> Tensors:
    """Course ViT state -> HF vision keys (inverse of :func:`vit_from_hf`)."""
    e = f"{prefix}embeddings."
    out = layers_to_hf(state, prefix)
    out.update({
        f"{e}patch_embedding.weight": linear_patch_to_conv(state["patch_embed.weight"],
                                                           patch_size, channels),
        f"{e}class_embedding": state["class_embedding"],
        f"{e}position_embedding.weight": state["positional_embedding"],
        f"{prefix}pre_layrnorm.weight": state["ln_pre.weight"],
        f"{prefix}pre_layrnorm.bias": state["ln_pre.bias"],
        f"{prefix}post_layernorm.weight": state["ln_post.weight"],
        f"{prefix}post_layernorm.bias": state["ln_post.bias"],
        proj_key: state["proj"].T.contiguous(),
    })
    return out


def text_from_hf(state: Tensors, prefix: str = "text_model.",
                 proj_key: str = "text_projection.weight", id_map: torch.Tensor | None = None
                 ) -> Tensors:
    """HF text keys -> course ``TextEncoder`` state.  ``id_map``: :func:`token_id_map` (rows of
    the token embedding are read at ``id_map[course_id]``); ``None`` keeps the ids."""
    e = f"{prefix}embeddings."
    tok = state[f"{e}token_embedding.weight"]
    out = layers_from_hf(state, prefix)
    out.update({
        "token_embedding.weight": tok if id_map is None else tok[id_map],
        "positional_embedding": state[f"{e}position_embedding.weight"],
        "ln_final.weight": state[f"{prefix}final_layer_norm.weight"],
        "ln_final.bias": state[f"{prefix}final_layer_norm.bias"],
        "text_projection": state[proj_key].T,
    })
    return out


def text_to_hf(state: Tensors, prefix: str = "text_model.",
               proj_key: str = "text_projection.weight", id_map: torch.Tensor | None = None
               ) -> Tensors:
    """Course ``TextEncoder`` state -> HF text keys (inverse of :func:`text_from_hf`; the map is
    its own inverse, so the same ``id_map`` is passed both ways)."""
    e = f"{prefix}embeddings."
    tok = state["token_embedding.weight"]
    out = layers_to_hf(state, prefix)
    out.update({
        f"{e}token_embedding.weight": tok if id_map is None else tok[id_map],
        f"{e}position_embedding.weight": state["positional_embedding"],
        f"{prefix}final_layer_norm.weight": state["ln_final.weight"],
        f"{prefix}final_layer_norm.bias": state["ln_final.bias"],
        proj_key: state["text_projection"].T.contiguous(),
    })
    return out


def _split(state: Tensors, prefix: str) -> Tensors:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _check_vit(config) -> None:
    if config.image_tower != "vit":
        raise ValueError(f"config.image_tower must be 'vit' (Hugging Face's CLIPModel has a ViT "
                         f"image tower only), got {config.image_tower!r}")
    if config.text.eos_id is None:
        raise ValueError("config.text.eos_id must be set (Hugging Face pools at that id)")


def to_hf(state: Tensors, config) -> Tensors:
    """Course ``CLIP`` state of ``config`` (a ``CLIPConfig``) -> HF ``CLIPModel`` state.

    Token ids move by :func:`token_id_map`; feed the HF model :func:`hf_input_ids`.
    Raises ValueError for a ResNet image tower or a text config without ``eos_id``.
    """
    _check_vit(config)
    id_map = token_id_map(config.text.vocab_size, config.text.eos_id)
    out = vit_to_hf(_split(state, "visual."), config.vision.patch_size, config.vision.in_channels)
    out.update(text_to_hf(_split(state, "text."), id_map=id_map))
    out["logit_scale"] = state["logit_scale"]
    return out


def from_hf(state: Tensors, config) -> Tensors:
    """HF ``CLIPModel`` state (built by :func:`hf_config` for ``config``) -> course ``CLIP``
    state.  Raises ValueError as :func:`to_hf`."""
    _check_vit(config)
    id_map = token_id_map(config.text.vocab_size, config.text.eos_id)
    out = {f"visual.{k}": v for k, v in vit_from_hf(state).items()}
    out.update({f"text.{k}": v for k, v in text_from_hf(state, id_map=id_map).items()})
    out["logit_scale"] = state["logit_scale"]
    return out


def hf_config(config):
    """A ``transformers.CLIPConfig`` with the sizes of a course ``CLIPConfig`` (imports
    transformers).  ``eos_token_id`` is the HF id of the course's ``[EOS]`` (see
    :func:`token_id_map`), ``pad_token_id`` 0 and ``bos_token_id`` 1 as in the course tokenizer.
    Raises ValueError as :func:`to_hf`, and for post-norm blocks."""
    import transformers

    _check_vit(config)
    v, t = config.vision, config.text
    if not v.norm_first:
        raise ValueError("config.vision.norm_first must be True for Hugging Face's CLIP")
    eos = int(token_id_map(t.vocab_size, t.eos_id)[t.eos_id])
    H, W = v.image_hw
    if H != W:
        raise ValueError(f"config.vision.image_size must be square for Hugging Face's CLIP, "
                         f"got {v.image_size}")
    text = dict(vocab_size=t.vocab_size, hidden_size=t.width,
                intermediate_size=int(t.width * t.mlp_ratio), num_hidden_layers=t.layers,
                num_attention_heads=t.heads, max_position_embeddings=t.context_length,
                hidden_act=t.activation, layer_norm_eps=t.ln_eps, projection_dim=config.embed_dim,
                eos_token_id=eos, pad_token_id=0, bos_token_id=1)
    vision = dict(image_size=H, patch_size=v.patch_size, num_channels=v.in_channels,
                  hidden_size=v.width, intermediate_size=int(v.width * v.mlp_ratio),
                  num_hidden_layers=v.layers, num_attention_heads=v.heads,
                  hidden_act=v.activation, layer_norm_eps=v.ln_eps,
                  projection_dim=config.embed_dim)
    return transformers.CLIPConfig(text_config=text, vision_config=vision,
                                   projection_dim=config.embed_dim,
                                   logit_scale_init_value=float(config.init_logit_scale))


def build_hf(config, state: Tensors | None = None):
    """A ``transformers.CLIPModel`` with the sizes of ``config``; with ``state`` (a course
    ``CLIP`` state dict) its weights too.  Raises as :func:`hf_config`."""
    import transformers

    model = transformers.CLIPModel(hf_config(config))
    if state is not None:
        missing, unexpected = model.load_state_dict(to_hf(state, config), strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"state does not fill the HF model: missing {missing}, "
                             f"unexpected {unexpected}")
    return model
