"""CLIP's text tower: a causal transformer pooled at the end-of-text token.

Chapter 02 (network architectures).  Radford et al. 2021 embed tokens, add learned position
embeddings, run pre-norm transformer blocks under a *causal* mask (token i sees tokens 0..i only),
apply a final LayerNorm and take the feature at the end-of-text token ``[EOS]``: the only position
that has seen the whole caption.  A bias-free projection maps it to the joint space.

Padding: the course tokenizer pads on the right, after ``[EOS]``.  Under the causal mask no real
token ever attends to a later position, so padding cannot change the pooled feature and no padding
mask is needed (tested: changing the pad ids leaves the output unchanged).

Shapes: ``input_ids`` ``(B, L)`` long, ``L <= context_length``; ``attention_mask`` ``(B, L)``
(1 = real token, 0 = padding, right-padded); ``eot_index`` ``(B,)`` long (position of ``[EOS]``);
features ``(B, L, D)``; output ``(B, output_dim)``, not normalised.
Parameter names follow OpenCLIP's ``TextTransformer``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .transformer import Transformer

__all__ = ["causal_mask", "TextConfig", "TextEncoder"]


def causal_mask(length: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive ``(L, L)`` mask: 0 on and below the diagonal, ``-inf`` above (no peeking ahead)."""
    mask = torch.full((length, length), float("-inf"), device=device, dtype=dtype)
    return mask.triu(1)


@dataclass
class TextConfig:
    """A CLIP-style text encoder.  ``vocab_size`` must match the tokenizer (``tok.vocab_size``).

    ``eos_id``: the ``[EOS]`` id, used to find the pooling position only when ``forward`` gets
    neither ``eot_index`` nor ``attention_mask``.
    """

    vocab_size: int = 128
    context_length: int = 32
    width: int = 64
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    output_dim: int = 64
    activation: str = "gelu"
    ln_eps: float = 1e-5
    eos_id: int | None = None

    @classmethod
    def tiny(cls, **overrides) -> TextConfig:
        """Width 64, 2 layers, 4 heads, context 32, 64-d output; pass
        ``vocab_size=tok.vocab_size``."""
        return replace(cls(layers=2), **overrides)


class TextEncoder(nn.Module):
    """Named stages: ``embed(input_ids) -> (B, L, D)``, ``forward_features(x) -> (B, L, D)``
    (causal transformer + ``ln_final``), ``eot_positions(...) -> (B,)``,
    ``pool(features, eot_index) -> (B, output_dim)``.

    ``forward(input_ids, attention_mask=None, eot_index=None)`` pools at ``eot_index`` if given,
    else at the last real token of ``attention_mask`` (``sum - 1``), else at the first
    ``cfg.eos_id``.  Attention follows the image towers' convention: with
    ``return_attention=True`` ``forward_features`` and ``forward`` return ``(output, attentions)``,
    a list of ``(B, h, L, L)`` causal weights, one per block.

    Raises TypeError when ``cfg`` is not a :class:`TextConfig`.
    """

    def __init__(self, cfg: TextConfig):
        super().__init__()
        if not isinstance(cfg, TextConfig):
            raise TypeError(f"cfg must be a TextConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.output_dim = cfg.output_dim
        D = cfg.width
        self.token_embedding = nn.Embedding(cfg.vocab_size, D)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, D))
        self.transformer = Transformer(
            D, cfg.layers, cfg.heads, cfg.mlp_ratio, cfg.activation, cfg.ln_eps
        )
        self.ln_final = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.text_projection = nn.Parameter(torch.empty(D, cfg.output_dim))
        self.register_buffer("attn_mask", causal_mask(cfg.context_length), persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=D**-0.5)

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        """Raises ValueError for a wrong shape or out-of-vocabulary ids, TypeError for non-integer
        ids."""
        c = self.cfg
        if input_ids.dim() != 2:
            raise ValueError("input_ids must have shape (B, L) (2 dims), "
                             f"got {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        if input_ids.shape[1] > c.context_length:
            raise ValueError(
                f"input_ids must have shape (B, L <= context_length={c.context_length}), "
                f"got {tuple(input_ids.shape)}"
            )
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= c.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, vocab_size={c.vocab_size}), "
                f"got min {int(input_ids.min())}, max {int(input_ids.max())}"
            )

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B, L, D)``: token embedding + the first L position embeddings.

        Raises ValueError unless ``input_ids`` is ``(B, L <= context_length)`` with ids in
        ``[0, vocab_size)``; TypeError when it is not an integer tensor.
        """
        self._check_ids(input_ids)
        L = input_ids.shape[1]
        x = self.token_embedding(input_ids)
        return x + self.positional_embedding[:L].to(x.dtype)

    def forward_features(self, x: torch.Tensor, return_attention: bool = False):
        """Causal transformer then ``ln_final``: ``(B, L, D) -> (B, L, D)``.

        With ``return_attention=True`` also the per-layer weights ``[(B, h, L, L)]``.
        Raises ValueError unless ``x`` is ``(B, L <= context_length, D)``.
        """
        if x.dim() != 3 or x.shape[1] > self.cfg.context_length:
            raise ValueError(
                f"x must have shape (B, L <= {self.cfg.context_length}, D={self.cfg.width}), "
                f"got {tuple(x.shape)}"
            )
        L = x.shape[1]
        mask = self.attn_mask[:L, :L].to(x.dtype)
        out = self.transformer(x, attn_mask=mask, return_attention=return_attention)
        if return_attention:
            return self.ln_final(out[0]), out[1]
        return self.ln_final(out)

    def eot_positions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        eot_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Position of ``[EOS]`` in each row, ``(B,)`` long (see the class docstring for the
        order).

        Raises ValueError for an ``eot_index`` of the wrong shape or range, an ``attention_mask``
        that is not right-padded 0/1 of ``input_ids``' shape, a row without ``cfg.eos_id``, or
        when none of the three is available.
        """
        B, L = input_ids.shape
        if eot_index is not None:
            if eot_index.shape != (B,):
                raise ValueError(f"eot_index must have shape (B,) = ({B},), "
                                 f"got {tuple(eot_index.shape)}")
            if B and (eot_index.min() < 0 or eot_index.max() >= L):
                raise ValueError(f"eot_index must lie in [0, L={L}), got {eot_index.tolist()}")
            return eot_index.long()
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(
                    f"attention_mask must have the shape of input_ids (B, L) = {(B, L)}, "
                    f"got {tuple(attention_mask.shape)}"
                )
            m = attention_mask.long()
            if ((m != 0) & (m != 1)).any() or (m[:, 1:] > m[:, :-1]).any() or (m.sum(1) == 0).any():
                raise ValueError(
                    "attention_mask must be right-padded 0/1 rows (1...1 0...0) with at least one 1"
                )
            return m.sum(dim=1) - 1
        if self.cfg.eos_id is not None:
            is_eos = input_ids == self.cfg.eos_id
            if not is_eos.any(dim=1).all():
                raise ValueError(f"every row of input_ids must contain eos_id={self.cfg.eos_id}")
            return is_eos.int().argmax(dim=1)
        raise ValueError("give eot_index or attention_mask (or set cfg.eos_id) to locate [EOS]")

    def pool(self, features: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """Feature at ``eot_index`` ``@ text_projection``:
        ``(B, L, D), (B,) -> (B, output_dim)``."""
        rows = torch.arange(features.shape[0], device=features.device)
        return features[rows, eot_index.to(features.device)] @ self.text_projection

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        eot_index: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        """``(B, L) -> (B, output_dim)``, not normalised; with ``return_attention=True``
        ``(output, [(B, h, L, L)] * layers)``.  Raises the errors of :meth:`embed` and
        :meth:`eot_positions`."""
        x = self.embed(input_ids)
        pos = self.eot_positions(input_ids, attention_mask, eot_index)
        if not return_attention:
            return self.pool(self.forward_features(x), pos)
        features, maps = self.forward_features(x, return_attention=True)
        return self.pool(features, pos), maps
