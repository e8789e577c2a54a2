"""A word-level tokenizer for ShapeWorld captions and zero-shot prompts.

Chapter 03 (datasets) builds it; chapters 02 (text encoder), 04 (CLIP) and 05 (masked language
modelling) use it. CLIP (Radford et al., 2021) uses a byte-pair-encoding tokenizer with start and
end-of-text tokens and pools the text encoder at the end-of-text position; our toy world has a
closed vocabulary, so one token per word is enough and keeps every id readable.

Vocabulary: five special tokens first, ``[PAD]`` = 0, ``[SOS]`` = 1, ``[EOS]`` = 2, ``[MASK]`` = 3,
``[UNK]`` = 4, then the words in the order given. Text is lower-cased; the punctuation marks
``, . : ; ! ?`` are tokens of their own; any other non-letter, non-digit character separates words.
Unknown words map to ``[UNK]`` silently unless ``strict=True``, which raises ValueError listing
them; :meth:`Tokenizer.unknown_words`, :meth:`Tokenizer.known` and ``word in tokenizer`` say which
words the vocabulary holds, so a prompt typed by a student can show what the model cannot read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[SOS]", "[EOS]", "[MASK]", "[UNK]")
PUNCTUATION: tuple[str, ...] = (",", ".", ":", ";", "!", "?")
#: Words for zero-shot prompts and the real-image adapters, added by :meth:`Tokenizer.from_world`.
PROMPT_WORDS: tuple[str, ...] = (
    "a", "an", "the", "this", "that", "is", "of", "photo", "picture", "image", "drawing",
    "rendering", "sketch", "toy", "big", "tiny", "bright", "dark", "good", "bad", "clear", "blurry",
    "close", "up",
    "it", "its", "my", "some", "kind", "type", "shape", "object", "colour", "color", "digit",
    "handwritten", "number", "astronaut", "cup", "coffee", "cat", "rocket", "person", "animal",
    "airplane", "automobile", "bird", "deer", "dog", "frog", "horse", "ship", "truck", "car",
)

_TOKEN = re.compile(r"[a-z0-9]+|[,.:;!?]")


class TokenBatch(dict):
    """``dict`` of (B, L) / (B,) LongTensors with attribute access and ``.to(device)``.

    input_ids: (B, L) token ids, ``[SOS] words [EOS] [PAD]...``.
    attention_mask: (B, L), 1 = real token (including [SOS] and [EOS]), 0 = padding.
    eot_index: (B,), position of the [EOS] token (where CLIP-style encoders pool).
    """

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    def to(self, device) -> TokenBatch:
        return TokenBatch({k: v.to(device) for k, v in self.items()})


class Tokenizer:
    """Word-level tokenizer: ``Tokenizer(words)`` or :meth:`Tokenizer.from_world`.

    >>> tok = Tokenizer(["a", "red", "circle"])
    >>> tok.encode("A red circle!")
    [1, 5, 6, 7, 4, 2]
    >>> "red" in tok, tok.known("zebra"), tok.unknown_words(["a zebra"])
    (True, False, ['zebra'])

    Raises ValueError when ``words`` holds anything but lower-case words of letters/digits or
    punctuation marks.
    """

    def __init__(self, words: Iterable[str]) -> None:
        vocab = list(SPECIAL_TOKENS)
        seen = set(vocab)
        for w in words:
            if not isinstance(w, str) or not w or w != w.lower() or (
                    w not in PUNCTUATION and not _TOKEN.fullmatch(w)):
                raise ValueError(f"words: expected lower-case words of letters/digits or one of "
                                 f"{PUNCTUATION}, got {w!r}")
            if w not in seen:
                seen.add(w)
                vocab.append(w)
        self.vocab: list[str] = vocab
        self.token_to_id: dict[str, int] = {w: i for i, w in enumerate(vocab)}
        self.pad_id, self.sos_id, self.eos_id, self.mask_id, self.unk_id = range(5)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_world(cls, cfg=None, extra_words: Iterable[str] = ()) -> Tokenizer:
        """Every word a ShapeWorld caption of ``cfg`` can contain, :data:`PROMPT_WORDS`,
        the punctuation marks and ``extra_words``."""
        from ..world.captions import caption_vocabulary
        from ..world.config import WorldConfig

        cfg = WorldConfig() if cfg is None else cfg
        words = list(caption_vocabulary(cfg)) + list(PROMPT_WORDS) + list(PUNCTUATION)
        return cls(words + [w.lower() for w in extra_words])

    def to_dict(self) -> dict:
        """JSON-friendly state: the word list after the special tokens."""
        return {"words": self.vocab[len(SPECIAL_TOKENS):]}

    @classmethod
    def from_dict(cls, state: dict) -> Tokenizer:
        """Inverse of :meth:`to_dict`.  Raises ValueError for invalid words (see the class)."""
        return cls(state["words"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        """V, the number of token ids (special tokens included)."""
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def known(self, word: str) -> bool:
        """Whether ``word`` is one vocabulary entry (a word or punctuation mark; special tokens
        such as ``[UNK]`` are not words and are not known).  Case-insensitive, like encoding.

        Raises TypeError when ``word`` is not a str.
        """
        if not isinstance(word, str):
            raise TypeError(f"word: expected a str, got {type(word).__name__}")
        w = word.lower()
        return w not in SPECIAL_TOKENS and w in self.token_to_id

    def __contains__(self, word: object) -> bool:
        """``word in tokenizer``: :meth:`known` for a str, False for anything else."""
        return isinstance(word, str) and self.known(word)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"

    # ------------------------------------------------------------------ text <-> ids
    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-case and split into words and punctuation marks: "A red, big!" -> a red , big !"""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        return _TOKEN.findall(text.lower())

    def unknown_words(self, texts: str | Sequence[str]) -> list[str]:
        """Sorted distinct words of ``texts`` that are not in the vocabulary (they would become
        ``[UNK]``).  Raises TypeError when a text is not a str."""
        texts = [texts] if isinstance(texts, str) else texts
        return sorted({w for t in texts for w in self.split(t) if w not in self.token_to_id})

    def _check_known(self, texts: Sequence[str]) -> None:
        """Raises ValueError naming every unknown word of ``texts`` (strict mode)."""
        unknown = self.unknown_words(texts)
        if unknown:
            raise ValueError(f"texts contain {len(unknown)} word(s) not in the vocabulary "
                             f"(strict=True; they would become [UNK]): {unknown}")

    def encode(self, text: str, add_special_tokens: bool = True, strict: bool = False) -> list[int]:
        """Token ids of one text: ``[SOS] w1 ... wn [EOS]`` (unknown words -> [UNK]).

        Raises TypeError when ``text`` is not a str; with ``strict=True`` ValueError listing the
        unknown words instead of mapping them to [UNK].
        """
        if strict:
            self._check_known([text])
        ids = [self.token_to_id.get(w, self.unk_id) for w in self.split(text)]
        return [self.sos_id, *ids, self.eos_id] if add_special_tokens else ids

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        """Text of a sequence of ids; stops at the first [EOS]. With ``skip_special_tokens``,
        [PAD]/[SOS]/[EOS] are dropped (a [MASK] or [UNK] stays visible).

        Raises ValueError for a tensor that is not 1-D or an id outside ``[0, vocab_size)``.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids: expected a 1-D sequence, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        words = []
        for i in ids:
            if not 0 <= int(i) < self.vocab_size:
                raise ValueError(f"ids: expected ids in [0, {self.vocab_size}), got {i}")
            if skip_special_tokens and i == self.eos_id:
                break
            if skip_special_tokens and i in (self.pad_id, self.sos_id):
                continue
            words.append(self.vocab[int(i)])
        text = " ".join(words)
        return re.sub(r" ([,.:;!?])", r"\1", text)

    def batch_decode(self, input_ids: torch.Tensor, skip_special_tokens: bool = True) -> list[str]:
        """:meth:`decode` for each row of (B, L) ids."""
        return [self.decode(row, skip_special_tokens) for row in input_ids]

    def __call__(self, texts: str | Sequence[str], context_length: int = 32,
                 truncate: bool = True, strict: bool = False) -> TokenBatch:
        """Encode B texts to fixed length L = ``context_length``.

        Too-long texts keep ``[SOS]``, their first L - 2 tokens and ``[EOS]`` (so [EOS] is always
        last) when ``truncate`` is True, and raise ``ValueError`` otherwise.
        Returns a :class:`TokenBatch` with ``input_ids`` (B, L), ``attention_mask`` (B, L) and
        ``eot_index`` (B,), all int64.

        Raises TypeError when ``texts`` is not a str or a sequence of str; ValueError for a
        ``context_length`` below 3, a too-long text with ``truncate=False``, and (``strict=True``)
        any word outside the vocabulary -- the message lists them all.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts: expected a str or a sequence of str")
        if isinstance(context_length, bool) or not isinstance(context_length, int) or (
                context_length < 3):
            raise ValueError(f"context_length: expected an int >= 3, got {context_length!r}")
        if strict:
            self._check_known(texts)
        L = context_length
        rows, ends = [], []        # plain lists, one tensor at the end (a tensor per row is slow)
        for b, text in enumerate(texts):
            ids = self.encode(text)
            if len(ids) > L:
                if not truncate:
                    raise ValueError(f"texts[{b}]: {len(ids)} tokens with [SOS]/[EOS] exceed "
                                     f"context_length={L} (pass truncate=True to cut): {text!r}")
                ids = ids[: L - 1] + [self.eos_id]
            rows.append(ids + [self.pad_id] * (L - len(ids)))
            ends.append(len(ids) - 1)
        input_ids = torch.tensor(rows, dtype=torch.long).reshape(len(texts), L)
        eot = torch.tensor(ends, dtype=torch.long)
        attention_mask = (torch.arange(L)[None, :] <= eot[:, None]).long()
        return TokenBatch(input_ids=input_ids, attention_mask=attention_mask, eot_index=eot)

    def special_tokens_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, True at [PAD], [SOS] and [EOS] (tokens a masking objective never picks)."""
        return (input_ids == self.pad_id) | (input_ids == self.sos_id) | (input_ids == self.eos_id)
