"""Dense (per-location) image features in the joint image–text space: the model-specific hooks.

Chapter 08 (zero-shot segmentation and detection).  A CLIP image tower is trained to produce *one*
vector per image, yet its last layers compute a feature at every location.  MaskCLIP (Zhou, Loy,
Dai 2022) observed that these local features already live in the joint space if one takes the
right path through the last layer:

* **ResNet tower** (attention pooling): apply the pool's value projection and output projection
  at every grid position (two 1x1 convolutions), skipping the query–key attention that mixes the
  positions into one vector;
* **ViT tower**: in the last transformer block, replace each token's attention output by its own
  value (the query–key attention again skipped), keep the block's residual and MLP, then apply
  ``ln_post`` and ``proj`` to every patch token — the *value path*.
  The **naive** alternative keeps the last block as it is and projects its patch tokens; in a
  CLIP trained on the class token only, those tokens mostly carry global, mixed information.

Every function returns ``(B, D, h, w)`` float features (not normalised) on the model's h x w
grid; compare them with (K, D) class text embeddings by cosine similarity.

This is the one place that touches a model's internals.  Other models plug in without editing
the evaluation code: give the model an ``encode_dense(images, method)`` method, or register a
function for its image-tower class with :func:`register_dense_hook`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["METHODS", "dense_features", "register_dense_hook", "vit_dense", "resnet_dense"]

#: "maskclip": the value path (both towers); "naive": the last block's patch tokens (ViT only).
METHODS = ("maskclip", "naive")

_HOOKS: dict[type, Callable] = {}


def register_dense_hook(tower_type: type, fn: Callable) -> None:
    """Use ``fn(tower, images, method) -> (B, D, h, w)`` for image towers of ``tower_type``."""
    if not isinstance(tower_type, type) or not callable(fn):
        raise TypeError(f"register_dense_hook needs a class and a callable, got "
                        f"{tower_type!r} and {fn!r}")
    _HOOKS[tower_type] = fn


def _grid(tokens: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, N, D) patch tokens in row-major order -> (B, D, h, w); square when ``hw`` is None."""
    B, N, D = tokens.shape
    if hw is None:
        g = int(round(N ** 0.5))
        hw = (g, g)
    h, w = hw
    if h * w != N:
        raise ValueError(f"expected a {h}x{w} grid of patch tokens, got N = {N}")
    return tokens.transpose(1, 2).reshape(B, D, h, w)  # (B, N, D) -> (B, D, N) -> (B, D, h, w)


def vit_dense(visual, images: torch.Tensor, method: str = "maskclip") -> torch.Tensor:
    """Dense joint-space features of a :class:`~vlm_course.models.vit.VisionTransformer`.

    images: (B, 3, H, W) float in [0, 1].  Returns (B, output_dim, H/P, W/P), not normalised:
    ``method="maskclip"`` the last block's value path, ``"naive"`` its ordinary patch tokens,
    each through ``ln_post`` and ``proj`` (see the module docstring).
    """
    x = visual.ln_pre(visual.embed(visual.patchify(images)))      # (B, 1 + N, D)
    *first, last = visual.transformer.resblocks
    for block in first:
        x, _ = block(x)
    if method == "naive":
        y, _ = last(x)                                            # (B, 1 + N, D)
    else:
        if not last.norm_first:
            raise ValueError("the MaskCLIP value path is defined for pre-norm blocks only")
        D = x.shape[-1]
        h = last.ln_1(x)
        w, b = last.attn.in_proj_weight, last.attn.in_proj_bias
        value = F.linear(h, w[2 * D:], None if b is None else b[2 * D:])   # (B, 1 + N, D)
        y = x + last.attn.out_proj(value)        # attention output := each token's own value
        y = y + last.mlp(last.ln_2(y))
    grid = getattr(visual.cfg, "grid", None)                      # (h, w) of non-square towers
    return _grid(visual.ln_post(y[:, 1:]) @ visual.proj, grid)    # (B, N, D_out) -> grid


def resnet_dense(visual, images: torch.Tensor, method: str = "maskclip") -> torch.Tensor:
    """Dense joint-space features of a :class:`~vlm_course.models.resnet.ResNet` with CLIP's
    attention pool: its value and output projections at every position (MaskCLIP).

    Returns (B, output_dim, H / stride, W / stride).  Only ``method="maskclip"`` exists: the
    pool has no per-position output of its own.
    """
    if method != "maskclip":
        raise ValueError(f"method must be 'maskclip' for a ResNet tower (naive patch tokens "
                         f"exist only for the ViT), got {method!r}")
    pool = getattr(visual, "pool", None)
    if not callable(getattr(pool, "dense", None)):
        raise TypeError(f"the ResNet's pool must be CLIP's attention pool (with .dense), got "
                        f"{type(pool).__name__}")
    return pool.dense(visual.forward_features(images))


def _builtin_hooks() -> None:
    from vlm_course.models.resnet import ResNet
    from vlm_course.models.vit import VisionTransformer

    _HOOKS.setdefault(VisionTransformer, vit_dense)
    _HOOKS.setdefault(ResNet, resnet_dense)


@torch.no_grad()
def dense_features(model, images: torch.Tensor, method: str = "maskclip") -> torch.Tensor:
    """(B, D, h, w) dense joint-space features of ``images`` (B, 3, H, W) float in [0, 1].

    Dispatch: ``model.encode_dense(images, method)`` if the model has one, else the hook
    registered for the class of ``model.visual`` (ViT and ResNet towers are built in).  Runs
    without gradients on the model's device; the caller puts the model in eval mode.
    Raises ValueError for an unknown ``method`` or a wrong image shape, TypeError for a model
    with no dense hook.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 \
            or not images.is_floating_point():
        raise ValueError(f"images must be a float (B, 3, H, W) tensor, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} "
                         f"{tuple(getattr(images, 'shape', ()))}")
    if callable(getattr(model, "encode_dense", None)):
        return model.encode_dense(images, method)
    visual = getattr(model, "visual", None)
    _builtin_hooks()
    for cls in type(visual).__mro__:
        if cls in _HOOKS:
            device = next(visual.parameters()).device
            return _HOOKS[cls](visual, images.to(device), method)
    raise TypeError(f"no dense-feature hook for image tower {type(visual).__name__}: give the "
                    f"model an encode_dense(images, method) method or call "
                    f"register_dense_hook({type(visual).__name__}, fn)")
