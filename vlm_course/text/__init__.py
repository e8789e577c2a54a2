"""Text side of the course: the word-level tokenizer and text rules (chapter 03)."""

from .articles import fix_articles
from .tokenizer import PROMPT_WORDS, PUNCTUATION, SPECIAL_TOKENS, TokenBatch, Tokenizer

__all__ = ["fix_articles", "PROMPT_WORDS", "PUNCTUATION", "SPECIAL_TOKENS", "TokenBatch",
           "Tokenizer"]
