"""Text side of the course: the word-level tokenizer and text rules (chapter 03); chapter 07's
text rasteriser (:mod:`vlm_course.text.rasterise`, captions as pixels for a one-tower model) and
deterministic typos (:mod:`vlm_course.text.typos`), imported from their modules."""

from .articles import fix_articles
from .tokenizer import PROMPT_WORDS, PUNCTUATION, SPECIAL_TOKENS, TokenBatch, Tokenizer

__all__ = ["fix_articles", "PROMPT_WORDS", "PUNCTUATION", "SPECIAL_TOKENS", "TokenBatch",
           "Tokenizer"]
