"""Text prompt tuning: CoOp and CoCoOp (chapter 10).

Zero-shot CLIP classifies with a hand-written prompt such as "a photo of a {class}.", and small
changes of wording move accuracy by several points.  **CoOp** (Zhou et al. 2022, "Learning to
prompt for vision-language models") replaces the words before the class name by ``M`` learnable
context vectors in the text encoder's *input embedding space* and trains only them, with the
cross-entropy of the few-shot labels; the whole VLM stays frozen.  The context is either unified
(one ``(M, D)`` set shared by all classes) or class-specific (``(K, M, D)``).  The prompt of class
``k`` is the token sequence::

    [SOS] ctx_1 ... ctx_M  <words of class k>  .  [EOS]  [PAD] ...

and the text tower still pools at ``[EOS]``.  With the context set to the embeddings of "a photo of
a", CoOp computes exactly the zero-shot classifier of "a photo of a {class}." (tested).

**CoCoOp** (Zhou et al. 2022, "Conditional prompt learning for vision-language models") observed
that CoOp's learned context overfits the training ("base") classes and generalises worse than the
hand-written prompt to unseen ("new") classes.  It adds a light *meta-network*
``Linear(E, E/16) -> ReLU -> Linear(E/16, D)`` that maps each image feature to a vector ``pi(x)``
added to every context vector, so the prompt depends on the image: ``ctx_m(x) = ctx_m + pi(x)``.
Each image then needs its own K text embeddings (B x K text-encoder passes).

Shapes: K classes, M context vectors, D text width, E joint embedding size, L context length.
Only the text tower's internals are used (through :mod:`vlm_course.transfer.internals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .frozen import FrozenVLM
from .internals import encode_text_embeddings, text_tower, token_embeddings

__all__ = ["insert_context", "CoOpConfig", "CoOp", "CoCoOpConfig", "CoCoOp"]


def insert_context(embeddings: torch.Tensor, eot_index: torch.Tensor,
                   context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Put M context vectors right after ``[SOS]``: the CoOp prompt ("class token at the end").

    embeddings: (P, L, D) word embeddings of "[SOS] <class words> . [EOS] [PAD]..." (no positions).
    eot_index: (P,) long, position of ``[EOS]`` in each row.
    context: (P, M, D) — one context per row (expand a shared (M, D) context first).
    Returns ``(x, eot)``: x (P, L, D) = ``[SOS] ctx_1..ctx_M <class words> . [EOS] [PAD]...`` (the
    words shift right by M, trailing padding drops off) and the new ``[EOS]`` positions
    ``eot_index + M``.  Raises ValueError for mismatched shapes or when a prompt no longer fits in
    L (``[EOS]`` would be cut off).
    """
    if embeddings.dim() != 3 or context.dim() != 3:
        raise ValueError(f"embeddings (P, L, D) and context (P, M, D) must be 3-D, got "
                         f"{tuple(embeddings.shape)} and {tuple(context.shape)}")
    P, L, D = embeddings.shape
    M = context.shape[1]
    if context.shape[0] != P or context.shape[2] != D:
        raise ValueError(f"context must have shape (P={P}, M, D={D}), got {tuple(context.shape)}")
    if eot_index.shape != (P,):
        raise ValueError(f"eot_index must have shape (P,) = ({P},), got {tuple(eot_index.shape)}")
    if P and int(eot_index.max()) + M >= L:
        raise ValueError(f"context of M={M} vectors does not fit: the longest prompt needs "
                         f"{int(eot_index.max()) + M + 1} tokens > context length L={L}")
    x = torch.cat([embeddings[:, :1], context.to(embeddings.dtype), embeddings[:, 1:L - M]], dim=1)
    return x, eot_index + M


def _context_init(model, n_ctx: int, init: str | None, init_std: float,
                  copies: int | None) -> torch.Tensor:
    """(M, D) or (copies, M, D) initial context: the embeddings of ``init`` or N(0, init_std)."""
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1:
        raise ValueError(f"n_ctx must be an int >= 1, got {n_ctx!r}")
    D = text_tower(model).cfg.width
    if init is None:
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std!r}")
        shape = (n_ctx, D) if copies is None else (copies, n_ctx, D)
        return torch.randn(shape) * init_std
    if not isinstance(init, str) or not init.split():
        raise ValueError(f"init must be None or a non-empty string of words, got {init!r}")
    tokens = model.tokenize([init])
    eot = int(tokens["eot_index"][0])
    ids = tokens["input_ids"][:, 1:eot]  # the words, without [SOS] and [EOS]
    if ids.shape[1] != n_ctx:
        raise ValueError(f"n_ctx must equal the number of init words ({ids.shape[1]} in "
                         f"{init!r}), got {n_ctx}")
    unknown = model.tokenizer.unknown_words([init]) if hasattr(model, "tokenizer") else []
    if unknown:
        raise ValueError(f"init contains words the tokenizer does not know: {unknown}")
    with torch.no_grad():
        ctx = token_embeddings(model, ids)[0].detach().cpu().clone()  # (M, D)
    return ctx if copies is None else ctx.expand(copies, -1, -1).clone()


class _PromptLearner(FrozenVLM):
    """Shared by CoOp and CoCoOp: the frozen embeddings of "[SOS] <class words> . [EOS]"."""

    uses_image_features = True

    def __init__(self, model, classnames: Sequence[str]):
        super().__init__(model, classnames)
        text_tower(model)  # TypeError early for a model without a course text tower
        self.register_buffer("name_embeddings", None, persistent=False)
        self.register_buffer("name_eot", None, persistent=False)
        self._embed_names()

    def _embed_names(self) -> None:
        tokens = self.vlm.tokenize([f"{c}." for c in self.classnames])
        with torch.no_grad():
            self.name_embeddings = token_embeddings(self.vlm, tokens["input_ids"]).detach()
        self.name_eot = tokens["eot_index"].to(self.device)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        super().set_classnames(classnames)
        self._embed_names()

    def _check_fits(self, n_ctx: int) -> None:
        L = self.name_embeddings.shape[1]
        longest = int(self.name_eot.max()) + n_ctx + 1
        if longest > L:
            raise ValueError(f"n_ctx={n_ctx} context vectors do not fit: the longest class prompt "
                             f"needs {longest} tokens > the text tower's context length {L}")


@dataclass
class CoOpConfig:
    """CoOp: ``n_ctx`` context vectors, initialised from the words ``init`` (their count must
    equal ``n_ctx``) or, with ``init=None``, from N(0, ``init_std``) as in the paper's random
    init; ``class_specific`` gives every class its own context (CoOp's "CSC")."""

    n_ctx: int = 4
    init: str | None = "a photo of a"
    class_specific: bool = False
    init_std: float = 0.02

    @classmethod
    def tiny(cls) -> CoOpConfig:
        return cls(n_ctx=2, init=None)


class CoOp(_PromptLearner):
    """CoOp (Zhou et al. 2022, IJCV; chapter 10): learnable context vectors, frozen VLM.

    ``CoOp(model, classnames, CoOpConfig())``; trainable: ``ctx`` (M, D) or (K, M, D).
    ``text_features() -> (K, E)`` unit rows; ``logits_from_features(image_emb (B, E)) -> (B, K)``
    ``= scale * image_emb @ text_features().T``; ``forward(images) -> (B, K)``.
    A unified context can classify other classes after :meth:`set_classnames` (base-to-new);
    a class-specific one cannot (ValueError).  Raises ValueError for a bad config or a context that
    does not fit the text tower's length, TypeError for a model without a course text tower.
    """

    def __init__(self, model, classnames: Sequence[str], config: CoOpConfig | None = None):
        super().__init__(model, classnames)
        self.config = config = CoOpConfig() if config is None else config
        self._check_fits(config.n_ctx)
        copies = self.num_classes if config.class_specific else None
        self.ctx = nn.Parameter(_context_init(model, config.n_ctx, config.init, config.init_std,
                                              copies).to(self.device))

    def set_classnames(self, classnames: Sequence[str]) -> None:
        if self.config.class_specific:
            raise ValueError("classnames cannot change for a class-specific context (one learned "
                             "context per training class); use class_specific=False")
        super().set_classnames(classnames)
        self._check_fits(self.config.n_ctx)

    def text_features(self) -> torch.Tensor:
        """(K, E) unit rows: the text embeddings of the K learned prompts."""
        K = self.num_classes
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.expand(K, -1, -1)  # (K, M, D)
        x, eot = insert_context(self.name_embeddings, self.name_eot, ctx)
        return encode_text_embeddings(self.vlm, x, eot)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        image_emb = self.check_features(image_emb)
        return self.scale * image_emb @ self.text_features().T


@dataclass
class CoCoOpConfig:
    """CoCoOp: ``n_ctx`` context vectors (init as :class:`CoOpConfig`) and a meta-network with a
    hidden width of ``E // hidden_ratio`` (the paper's 16)."""

    n_ctx: int = 4
    init: str | None = "a photo of a"
    init_std: float = 0.02
    hidden_ratio: int = 16

    @classmethod
    def tiny(cls) -> CoCoOpConfig:
        return cls(n_ctx=2, init=None, hidden_ratio=8)


class CoCoOp(_PromptLearner):
    """CoCoOp (Zhou et al. 2022, CVPR; chapter 10): image-conditional context.

    Trainable: ``ctx`` (M, D) and ``meta_net`` (E -> E/r -> D).  For image features f (B, E):
    ``ctx(f) = ctx + meta_net(f)`` (B, M, D), K prompts per image, logits
    ``scale * <f_b, text_{b,k}>`` (B, K).  With the meta-network's output zero it equals CoOp with
    the same context.  The meta-network's last layer starts at zero (the paper keeps PyTorch's
    default init), so training starts from the initial context, as CoOp's does, instead of from a
    random shift several times larger than the word embeddings.
    Raises as :class:`CoOp`, and ValueError for ``hidden_ratio`` < 1.
    """

    def __init__(self, model, classnames: Sequence[str], config: CoCoOpConfig | None = None):
        super().__init__(model, classnames)
        self.config = config = CoCoOpConfig() if config is None else config
        self._check_fits(config.n_ctx)
        r = config.hidden_ratio
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"hidden_ratio must be an int >= 1, got {r!r}")
        with torch.no_grad():
            E = int(model.encode_text(model.tokenize(["a"])).shape[-1])
        D = text_tower(model).cfg.width
        self.ctx = nn.Parameter(_context_init(model, config.n_ctx, config.init, config.init_std,
                                              None))
        self.meta_net = nn.Sequential(nn.Linear(E, max(1, E // r)), nn.ReLU(),
                                      nn.Linear(max(1, E // r), D))
        # Start at CoOp: PyTorch's default init of the last layer shifts every context vector by
        # a vector of norm ~2 for the shipped CLIP, whose word embeddings have norm ~0.3.
        nn.init.zeros_(self.meta_net[-1].weight)
        nn.init.zeros_(self.meta_net[-1].bias)
        self.to(self.device)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        super().set_classnames(classnames)
        self._check_fits(self.config.n_ctx)

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        image_emb = self.check_features(image_emb)
        B, K = image_emb.shape[0], self.num_classes
        ctx = self.ctx[None] + self.meta_net(image_emb)[:, None, :]  # (B, M, D)
        M, D = ctx.shape[1:]
        ctx = ctx[:, None].expand(B, K, M, D).reshape(B * K, M, D)  # prompt (b, k) -> row b*K+k
        names = self.name_embeddings[None].expand(B, -1, -1, -1)
        names = names.reshape(B * K, *self.name_embeddings.shape[1:])  # (B*K, L, D)
        x, eot = insert_context(names, self.name_eot.repeat(B), ctx)
        text = encode_text_embeddings(self.vlm, x, eot).view(B, K, -1)  # (B, K, E)
        return self.scale * torch.einsum("be,bke->bk", image_emb, text)
