"""Text side of the course: the word-level tokenizer (chapter 03)."""

from .tokenizer import PROMPT_WORDS, PUNCTUATION, SPECIAL_TOKENS, TokenBatch, Tokenizer

__all__ = ["PROMPT_WORDS", "PUNCTUATION", "SPECIAL_TOKENS", "TokenBatch", "Tokenizer"]
