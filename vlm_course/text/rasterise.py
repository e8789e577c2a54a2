"""Text as pixels: captions rasterised with a real font, for a model with one tower.

Chapter 07 (pre-training frameworks); CLIPPO (Tschannen et al. 2023) renders the caption as an
image and feeds it to the same ViT as the photo, so the model needs no tokenizer and no
vocabulary: a word it never saw, or a misspelt one, still becomes pixels close to the right ones.

:class:`TextRasteriser` draws white text on a black canvas with the DejaVu Sans font that ships
inside matplotlib (offline, no system fonts), through Pillow's FreeType binding with its basic
layout engine (no shaping library), so the same text always gives the same pixels.  Words are
wrapped greedily onto lines of ``font_size + 1`` pixels (from the top edge, a 1-pixel margin
left and right); what does not fit on the canvas (a very
long caption, a word wider than a line) is cut, as CLIPPO cuts text that overflows its image.
Rendered captions are cached (least recently used first out), so a training run renders each
distinct caption once.

Shapes: ``render_one(text) -> (H, W)`` uint8; ``__call__(texts) -> (B, 3, H, W)`` float32 in
[0, 1] (the three channels equal), the input format of every image tower of the course.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path

__all__ = ["TextRasteriser", "bundled_font"]


def bundled_font(name: str = "DejaVuSans.ttf") -> Path:
    """Path of a TrueType font bundled with matplotlib (found without importing matplotlib).

    Raises FileNotFoundError when matplotlib or the font file is missing (naming ``name``).
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"name: the font {name!r} comes with matplotlib, which is not "
                                "installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"name: no font {name!r} among matplotlib's bundled fonts "
                                f"({path.parent})")
    return path


def _positive_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


class TextRasteriser:
    """Render captions to ``size`` x ``size`` (or ``(H, W)``) images (see the module docstring).

    size: the canvas, an int (square) or ``(H, W)``; ``font_size``: the font's size in pixels
    (7 fits six lines of about 12 letters on a 48-pixel canvas); ``font``: a font file name
    among matplotlib's (:func:`bundled_font`) or a path; ``cache_size``: how many rendered
    captions to keep (0 disables the cache).

    Raises ValueError for a ``size`` or ``font_size`` that is not a positive int (``font_size``
    at least 4), a negative ``cache_size``; FileNotFoundError for a missing ``font``.
    """

    def __init__(self, size: int | tuple[int, int] = 48, font_size: int = 7,
                 font: str = "DejaVuSans.ttf", cache_size: int = 16384) -> None:
        from PIL import ImageFont

        hw = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
        if len(hw) != 2:
            raise ValueError(f"size: expected an int or (H, W), got {size!r}")
        for value in hw:
            _positive_int("size", value, 8)
        self.H, self.W = hw
        self.font_size = _positive_int("font_size", font_size, 4)
        self.cache_size = _positive_int("cache_size", cache_size, 0)
        path = Path(font) if Path(font).is_file() else bundled_font(font)
        self.font_path = path
        self.font = ImageFont.truetype(str(path), font_size, layout_engine=ImageFont.Layout.BASIC)
        self.line_height = font_size + 1
        self.margin = 1
        self._cache: OrderedDict[str, object] = OrderedDict()
        self.hits = self.misses = 0

    def __repr__(self) -> str:
        return (f"TextRasteriser(size=({self.H}, {self.W}), font_size={self.font_size}, "
                f"font={self.font_path.name!r})")

    def lines(self, text: str) -> list[str]:
        """The lines ``text`` is wrapped into (greedy, on spaces; every line is kept, also the
        ones that will not fit on the canvas).  Raises TypeError for a non-str ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        width = self.W - 2 * self.margin
        lines, current = [], ""
        for word in text.split():
            trial = f"{current} {word}" if current else word
            if not current or self.font.getlength(trial) <= width:
                current = trial
            else:
                lines.append(current)
                current = word
        return lines + [current] if current else lines

    @property
    def max_lines(self) -> int:
        """How many lines the canvas holds."""
        return max((self.H + 1) // self.line_height, 1)   # the last line needs no gap below

    def fits(self, text: str) -> bool:
        """Whether ``text`` renders whole: every line within the canvas's width and height."""
        lines = self.lines(text)
        width = self.W - 2 * self.margin
        return len(lines) <= self.max_lines and all(self.font.getlength(x) <= width
                                                     for x in lines)

    def render_one(self, text: str):
        """``(H, W)`` uint8 numpy array of ``text`` (255 = ink), from the cache when it is there.

        Raises TypeError for a non-str ``text``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            self.hits += 1
            return cached
        self.misses += 1
        import numpy as np
        from PIL import Image, ImageDraw

        canvas = Image.new("L", (self.W, self.H), 0)
        draw = ImageDraw.Draw(canvas)
        for row, line in enumerate(self.lines(text)[:self.max_lines]):
            draw.text((self.margin, row * self.line_height), line, fill=255,
                      font=self.font)
        pixels = np.asarray(canvas, dtype=np.uint8).copy()
        pixels.setflags(write=False)
        if self.cache_size:
            self._cache[text] = pixels
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return pixels

    def __call__(self, texts: list[str]):
        """``(B, 3, H, W)`` float32 tensor in [0, 1] of the ``B`` captions ``texts``.

        Raises TypeError unless ``texts`` is a str or a list/tuple of str.
        """
        import numpy as np
        import torch

        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"texts: expected a list of str, got {type(texts).__name__}"
                            + ("" if not isinstance(texts, (list, tuple)) else
                               f" holding {sorted({type(t).__name__ for t in texts})}"))
        if not texts:
            return torch.zeros(0, 3, self.H, self.W)
        stack = np.stack([self.render_one(t) for t in texts])          # (B, H, W) uint8
        pixels = torch.from_numpy(stack).float().div_(255.0)           # (B, H, W) in [0, 1]
        return pixels[:, None].expand(-1, 3, -1, -1).contiguous()     # (B, 3, H, W)
