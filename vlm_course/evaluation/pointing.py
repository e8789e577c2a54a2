"""The pointing game: does a word's highest-scoring region contain the object it names?

Chapter 06 (region-word alignment).  Zhang et al. (2016) score a localisation map by whether its
maximum falls on the annotated object; here the "map" is a region-word score matrix (GLIP-style
logits, one score per region proposal and word) and a word is a hit when its best region is one of
the regions it describes.  Only words that describe at least one region are played; a scorer that
picks a region at random hits with probability (describing regions) / (regions), the chance level
reported alongside.
"""

from __future__ import annotations

import torch

__all__ = ["pointing_game"]


def pointing_game(scores: torch.Tensor, targets: torch.Tensor,
                  region_mask: torch.Tensor | None = None) -> dict[str, float]:
    """Pointing-game accuracy of region-word scores.

    scores: (B, M, L) float, higher = region m matches word l better (``-inf`` for padding is
        fine: padded words have no target and are not played).
    targets: (B, M, L) bool, True where word l describes region m.
    region_mask: (B, M) bool/0-1, real regions (default: all); padded regions never win.
    Returns ``{"accuracy", "chance", "hits", "words"}``: the fraction of played words (those with
    at least one target region) whose argmax region is a target, the expected accuracy of a
    uniformly random region choice, and the counts.  Raises ValueError for mismatched shapes or
    when no word has a target.
    """
    if not torch.is_tensor(scores) or scores.dim() != 3:
        raise ValueError(f"scores: expected a (B, M, L) tensor, got "
                         f"{tuple(scores.shape) if torch.is_tensor(scores) else type(scores)}")
    if not torch.is_tensor(targets) or targets.shape != scores.shape:
        raise ValueError(f"targets: expected a bool tensor of shape {tuple(scores.shape)}, got "
                         f"{tuple(targets.shape) if torch.is_tensor(targets) else type(targets)}")
    B, M, L = scores.shape
    real = torch.ones(B, M, dtype=torch.bool) if region_mask is None else region_mask
    if not torch.is_tensor(real) or tuple(real.shape) != (B, M):
        raise ValueError(f"region_mask: expected shape ({B}, {M}), got "
                         f"{tuple(real.shape) if torch.is_tensor(real) else type(real)}")
    real = real.bool().to(scores.device)
    t = targets.bool() & real[:, :, None]
    played = t.any(dim=1)                                               # (B, L)
    if not played.any():
        raise ValueError("targets: no word describes any region, nothing to play")
    s = scores.float().masked_fill(~real[:, :, None], float("-inf"))
    best = s.argmax(dim=1)                                              # (B, L) region index
    hit = t.gather(1, best[:, None, :]).squeeze(1) & played
    chance = (t.sum(1).float() / real.sum(1, keepdim=True).float())[played]
    return {"accuracy": float(hit.sum() / played.sum()), "chance": float(chance.mean()),
            "hits": int(hit.sum()), "words": int(played.sum())}
