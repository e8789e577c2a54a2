"""Masking for generative pre-training: MAE patch masking, BEiT block masking, BERT token masking.

Chapter 05 (generative objectives).  Every helper returns what is needed to undo it:

* :func:`random_masking` (MAE, He et al. 2022): per-sample uniform noise, ``argsort``, keep the
  first ``int(N * (1 - ratio))`` tokens.  Returns the kept tokens, the binary mask in the original
  order (**1 = removed**, 0 = kept) and the indices that restore the original order.
  :func:`restore_order` puts kept tokens (plus mask tokens) back in place.
* :func:`block_masking` (BEiT, Bao et al. 2022): rectangles of random area and aspect ratio on the
  patch grid until the wanted number of patches is covered.  Returns a ``(B, N)`` bool mask.
* :func:`bert_masking` (BERT, Devlin et al. 2019): choose 15% of the non-special tokens; replace
  80% of the chosen by ``[MASK]``, 10% by a random word, keep 10%; labels are ``-100`` where
  nothing was chosen.  Special tokens (``[PAD]``, ``[SOS]``, ``[EOS]``, ...) are never chosen.

Pure tensor functions: this module imports nothing from the course, so the MAE model
(:mod:`vlm_course.models.mae`) can use it.  Shapes: B batch, N tokens (patches), D width,
L text length.  Randomness comes from ``torch.rand``/``torch.bernoulli`` with an optional
``torch.Generator`` (or from an explicit ``noise`` tensor), so a seed reproduces every mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = [
    "RandomMasking", "keep_count", "random_masking", "restore_order", "block_masking",
    "MaskedTokens", "bert_masking", "BERT_SPECIAL_TOKENS",
]

#: Tokens that :func:`bert_masking` never chooses and never draws as a random replacement.
BERT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[SOS]", "[EOS]", "[MASK]", "[UNK]", "[CLS]",
                                        "[SEP]")


def _check_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(mask_ratio).__name__}")
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"{name} must lie in [0, 1) (1 would remove every patch), "
                         f"got {mask_ratio}")
    return float(mask_ratio)


def keep_count(num_tokens: int, mask_ratio: float) -> int:
    """How many of ``num_tokens`` tokens MAE keeps: ``int(N * (1 - mask_ratio))`` (as MAE does).

    Raises ``ValueError`` if ``mask_ratio`` is outside ``[0, 1)`` or keeps no token at all
    (e.g. ratio 0.99 on 36 patches), ``TypeError`` if it is not a number.
    """
    ratio = _check_ratio(mask_ratio)
    keep = int(num_tokens * (1 - ratio))
    if keep < 1:
        raise ValueError(f"mask_ratio={ratio} keeps no token out of N={num_tokens} "
                         f"(int(N * (1 - mask_ratio)) = 0); use a smaller ratio")
    return keep


class RandomMasking(NamedTuple):
    """Result of :func:`random_masking`.

    kept: ``(B, N_keep, D)`` the visible tokens, in shuffled order.
    mask: ``(B, N)`` float, 1 = removed, 0 = kept, in the original token order.
    ids_restore: ``(B, N)`` long; ``restore_order`` uses it to undo the shuffle.
    ids_keep: ``(B, N_keep)`` long, the original positions of ``kept``.
    """

    kept: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor
    ids_keep: torch.Tensor


def random_masking(tokens: torch.Tensor, mask_ratio: float = 0.75, *,
                   noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> RandomMasking:
    """Per-sample random masking by shuffling (MAE, He et al. 2022; chapter 05).

    tokens: ``(B, N, D)`` float (patch embeddings, position embeddings already added).
    mask_ratio: fraction of tokens removed, in ``[0, 1)``; ``int(N * (1 - ratio))`` are kept.
    noise: optional ``(B, N)`` float; the tokens with the smallest noise are kept (for tests and
        reproducibility).  Otherwise uniform noise is drawn with ``generator``.
    Returns :class:`RandomMasking` ``(kept (B, N_keep, D), mask (B, N) 1 = removed,
    ids_restore (B, N), ids_keep (B, N_keep))``.
    Raises ``ValueError`` for tokens that are not 3-D, a ratio outside ``[0, 1)`` or one that
    keeps no token, and noise of the wrong shape.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        raise ValueError(f"tokens must have shape (B, N, D), "
                         f"got {tuple(getattr(tokens, 'shape', ()))}")
    B, N, D = tokens.shape
    n_keep = keep_count(N, mask_ratio)
    if noise is None:
        noise = torch.rand(B, N, generator=generator, device=tokens.device)
    elif noise.shape != (B, N):
        raise ValueError(f"noise must have shape (B, N) = ({B}, {N}), got {tuple(noise.shape)}")
    ids_shuffle = torch.argsort(noise.to(tokens.device), dim=1)  # (B, N): ascending noise
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, N): inverse permutation
    ids_keep = ids_shuffle[:, :n_keep]  # (B, N_keep): the smallest noise survives
    kept = torch.gather(tokens, 1, ids_keep[..., None].expand(B, n_keep, D))
    mask = torch.ones(B, N, device=tokens.device, dtype=tokens.dtype)
    mask[:, :n_keep] = 0  # in shuffled order: kept first ...
    mask = torch.gather(mask, 1, ids_restore)  # ... then back to the original order
    return RandomMasking(kept, mask, ids_restore, ids_keep)


def restore_order(tokens: torch.Tensor, ids_restore: torch.Tensor,
                  mask_token: torch.Tensor | None = None) -> torch.Tensor:
    """Undo the shuffle of :func:`random_masking`: ``(B, N_keep, D) -> (B, N, D)``.

    tokens: ``(B, N_keep, D)`` kept tokens in shuffled order (or all ``N`` shuffled tokens).
    ids_restore: ``(B, N)`` long from :func:`random_masking`.
    mask_token: ``(D,)`` the learned token put at every removed position (MAE's decoder);
        required when ``N_keep < N``.
    Returns the ``(B, N, D)`` tokens in the original order.  ``restore_order`` of all ``N``
    tokens gathered with ``argsort(ids_restore)`` is the identity (tested).
    Raises ``ValueError`` on mismatched shapes or a missing ``mask_token``.
    """
    if tokens.dim() != 3:
        raise ValueError(f"tokens must have shape (B, N_keep, D), got {tuple(tokens.shape)}")
    B, n_keep, D = tokens.shape
    if ids_restore.dim() != 2 or ids_restore.shape[0] != B or ids_restore.shape[1] < n_keep:
        raise ValueError(f"ids_restore must have shape (B={B}, N >= N_keep={n_keep}), "
                         f"got {tuple(ids_restore.shape)}")
    N = ids_restore.shape[1]
    if n_keep < N:
        if mask_token is None or mask_token.shape[-1] != D or mask_token.numel() != D:
            raise ValueError(f"mask_token must have shape (D,) = ({D},) when tokens hold fewer "
                             f"than N={N} tokens, got "
                             f"{None if mask_token is None else tuple(mask_token.shape)}")
        fill = mask_token.reshape(1, 1, D).to(tokens.dtype).expand(B, N - n_keep, D)
        tokens = torch.cat([tokens, fill], dim=1)  # (B, N, D) still in shuffled order
    return torch.gather(tokens, 1, ids_restore[..., None].expand(B, N, D))


def block_masking(batch_size: int, grid: tuple[int, int], num_masked: int, *,
                  min_block: int = 2, min_aspect: float = 0.3,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Block-wise masking (BEiT, Bao et al. 2022; chapter 05): ``(B, N)`` bool, True = masked.

    For each sample, rectangles of ``min_block .. remaining`` patches with aspect ratio in
    ``[min_aspect, 1 / min_aspect]`` (log-uniform) are placed at random on the ``grid = (h, w)``
    patch grid until ``num_masked`` patches are covered; a rectangle is accepted only if it masks
    at least one new patch and does not overshoot, so each row masks at most ``num_masked``
    patches (exactly that many unless ten placements in a row fail).  Patches are numbered
    row-major, as :func:`vlm_course.models.vit.patchify` orders them.
    Raises ``ValueError`` for a bad grid, ``num_masked`` outside ``[1, h*w - 1]`` (a mask must
    keep at least one patch) or ``min_block`` / ``min_aspect`` out of range.
    """
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(isinstance(g, int) and g >= 1 for g in grid)):
        raise ValueError(f"grid must be (h, w) positive ints, got {grid!r}")
    h, w = grid
    if isinstance(num_masked, bool) or not isinstance(num_masked, int) or not (
            1 <= num_masked < h * w):
        raise ValueError(f"num_masked must be an int in [1, {h * w - 1}] for grid {grid} "
                         f"(keep at least one patch), got {num_masked!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(min_block, int) or not 1 <= min_block <= num_masked:
        raise ValueError(f"min_block must be an int in [1, num_masked={num_masked}], "
                         f"got {min_block!r}")
    if not 0 < min_aspect <= 1:
        raise ValueError(f"min_aspect must lie in (0, 1], got {min_aspect}")
    log_aspect = (math.log(min_aspect), -math.log(min_aspect))
    masks = torch.zeros(batch_size, h, w, dtype=torch.bool)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    def randint(hi: int) -> int:  # uniform in [0, hi]
        return int(torch.randint(hi + 1, (), generator=generator))

    for b in range(batch_size):
        m, count, failures = masks[b], 0, 0
        while count < num_masked and failures < 10:
            left = num_masked - count
            area = uniform(min(min_block, left), left)
            aspect = math.exp(uniform(*log_aspect))
            bh = max(1, min(h, round(math.sqrt(area * aspect))))
            bw = max(1, min(w, round(math.sqrt(area / aspect))))
            top, lft = randint(h - bh), randint(w - bw)
            block = m[top:top + bh, lft:lft + bw]
            new = int((~block).sum())
            if 0 < new <= left:
                block.fill_(True)
                count += new
                failures = 0
            else:
                failures += 1
    return masks.reshape(batch_size, h * w)


class MaskedTokens(NamedTuple):
    """Result of :func:`bert_masking`; all ``(B, L)``.

    input_ids: long, the corrupted ids the model reads.
    labels: long, the original id where a token was chosen, ``-100`` elsewhere (ignored by
        ``F.cross_entropy``'s default ``ignore_index``).
    replaced: bool, chosen and replaced by ``[MASK]`` (about 80% of the chosen).
    randomized: bool, chosen and replaced by a random non-special word (about 10%).
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    replaced: torch.Tensor
    randomized: torch.Tensor


def bert_masking(input_ids: torch.Tensor, vocab: Sequence[str], *, probability: float = 0.15,
                 mask_fraction: float = 0.8, random_fraction: float = 0.1,
                 special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
                 special_tokens_mask: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> MaskedTokens:
    """BERT's masked-language-model corruption (Devlin et al. 2019; chapter 05).

    input_ids: ``(B, L)`` integer ids into ``vocab``.
    vocab: the token string of each id (``tokenizer.vocab``); it must contain ``"[MASK]"``.
    probability: chance that a non-special token is chosen (BERT: 0.15).
    mask_fraction / random_fraction: of the chosen, the share replaced by ``[MASK]`` (0.8) and by
        a random word (0.1); the rest (0.1) is left unchanged but still predicted.
    special_tokens: token strings never chosen and never drawn as random words.
    special_tokens_mask: optional ``(B, L)`` bool, more positions never chosen (e.g. padding of a
        tokenizer whose pad token is not in ``special_tokens``).
    Returns :class:`MaskedTokens` ``(input_ids, labels, replaced, randomized)``.

    The random draws follow the order of Hugging Face's ``DataCollatorForLanguageModeling``
    (chosen, then ``[MASK]``, then random) so that with the same ``generator`` state both choose
    the same positions; random words here are drawn from non-special words only.
    Raises ``ValueError`` if ``vocab`` lacks ``[MASK]`` or has no non-special word, if ids are
    out of range or not 2-D, if a probability is outside ``[0, 1]`` or the two fractions sum to
    more than 1; ``TypeError`` if ``input_ids`` is not an integer tensor.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, L), "
                         f"got {tuple(getattr(input_ids, 'shape', ()))}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
    vocab = list(vocab)
    if "[MASK]" not in vocab:
        raise ValueError(f"vocab must contain the '[MASK]' token, got a vocabulary of "
                         f"{len(vocab)} tokens without it (first ones: {vocab[:6]})")
    V = len(vocab)
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= V):
        raise ValueError(f"input_ids must lie in [0, len(vocab)={V}), got min "
                         f"{int(input_ids.min())}, max {int(input_ids.max())}")
    for name, p in (("probability", probability), ("mask_fraction", mask_fraction),
                    ("random_fraction", random_fraction)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {p!r}")
    if mask_fraction + random_fraction > 1.0 + 1e-12:
        raise ValueError(f"mask_fraction + random_fraction must be <= 1, got "
                         f"{mask_fraction} + {random_fraction}")
    special = set(special_tokens)
    special_ids = torch.tensor([i for i, t in enumerate(vocab) if t in special], dtype=torch.long)
    word_ids = torch.tensor([i for i, t in enumerate(vocab) if t not in special], dtype=torch.long)
    if word_ids.numel() == 0:
        raise ValueError("vocab must contain at least one non-special word to draw random "
                         "replacements from")
    device = input_ids.device
    never = torch.isin(input_ids, special_ids.to(device))  # (B, L) special tokens / padding
    if special_tokens_mask is not None:
        if special_tokens_mask.shape != input_ids.shape:
            raise ValueError(f"special_tokens_mask must have the shape of input_ids "
                             f"{tuple(input_ids.shape)}, got {tuple(special_tokens_mask.shape)}")
        never = never | special_tokens_mask.to(device).bool()

    def bernoulli(p: float) -> torch.Tensor:
        return torch.bernoulli(torch.full(input_ids.shape, p), generator=generator).bool()

    chance = torch.full(input_ids.shape, float(probability)).masked_fill(never.cpu(), 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool().to(device)
    labels = input_ids.masked_fill(~chosen, -100)
    replaced = bernoulli(mask_fraction).to(device) & chosen
    rest = 1.0 - mask_fraction
    scaled = random_fraction / rest if rest > 0 else 0.0
    randomized = bernoulli(min(scaled, 1.0)).to(device) & chosen & ~replaced
    picks = torch.randint(len(word_ids), input_ids.shape, generator=generator)
    random_words = word_ids[picks].to(device)  # (B, L) a random non-special word everywhere
    out = input_ids.clone()
    out[replaced] = vocab.index("[MASK]")
    out[randomized] = random_words[randomized]
    return MaskedTokens(out, labels, replaced, randomized)
