"""Features of every depth of a ViT image tower, for layer-wise linear probing.

Chapter 09 (linear probing): probes on intermediate layers show where a network makes a property
linearly readable (Alain and Bengio 2016; CLIP, Radford et al. 2021, and MAE probe several
depths).  :func:`vit_layer_features` runs a :class:`~vlm_course.models.vit.VisionTransformer`'s
named stages (``patchify`` -> ``embed`` -> ``ln_pre`` -> each block) and pools the tokens after
each stage; the last entry is the tower's output (``ln_post`` on the class token, ``@ proj``).
"""

from __future__ import annotations

import torch

__all__ = ["vit_layer_features", "layer_names"]


def layer_names(vit) -> list[str]:
    """Names of the entries of :func:`vit_layer_features`: ``"embed"``, ``"block 1"`` ..
    ``"block L"``, ``"output"``."""
    return ["embed", *[f"block {i + 1}" for i in range(len(vit.transformer.resblocks))], "output"]


@torch.no_grad()
def vit_layer_features(vit, images: torch.Tensor, pool: str = "mean") -> list[torch.Tensor]:
    """``[(B, D)] * (L + 1) + [(B, output_dim)]`` float32 features of (B, 3, H, W) ``images``.

    Entry 0 pools the embedded tokens (patch embedding + positions + class token, after
    ``ln_pre``), entry ``i`` the tokens after block ``i``; ``pool`` is ``"mean"`` (all tokens) or
    ``"cls"`` (the class token).  The last entry is ``vit(images)``.  The model should be in eval
    mode.  Raises ValueError for an unknown ``pool`` and for images of the wrong shape (the
    tower's own check).
    """
    if pool not in ("mean", "cls"):
        raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")

    def pooled(tokens: torch.Tensor) -> torch.Tensor:       # (B, 1 + N, D) -> (B, D)
        return (tokens.mean(1) if pool == "mean" else tokens[:, 0]).float()

    x = vit.ln_pre(vit.embed(vit.patchify(images)))          # (B, 1 + N, D)
    out = [pooled(x)]
    for block in vit.transformer.resblocks:
        x, _ = block(x, attn_mask=None, need_weights=False)   # (B, 1 + N, D)
        out.append(pooled(x))
    out.append(vit.forward_head(x).float())                  # (B, output_dim)
    return out
