"""Figures for the notebooks: image grids with readable titles, source listings, attention and
heat-map overlays, in one house style (every chapter).

House style: figures are :data:`FIG_WIDTH` = 7 inches wide (one page column of the book) and text is
at least :data:`FONT_SIZE` = 9 pt. Functions that build a figure return it and do not show it; the
``show_*`` variants also call ``plt.show()`` and return None, so a notebook cell prints no object.
matplotlib is imported when a function is called, never when ``vlm_course`` is imported; the
notebooks use the inline backend (tests use Agg).
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

FIG_WIDTH = 7.0  # inches: one column of the book
FONT_SIZE = 9  # points: the smallest text in any figure
_CHAR_WIDTH = 0.55  # average glyph width as a fraction of the font size (DejaVu Sans)


def use_house_style() -> None:
    """Set matplotlib's defaults to the house style (7-inch figures, text >= 9 pt)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.figsize": (FIG_WIDTH, 2.8), "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE,
        "axes.labelsize": FONT_SIZE, "xtick.labelsize": FONT_SIZE, "ytick.labelsize": FONT_SIZE,
        "legend.fontsize": FONT_SIZE, "figure.titlesize": FONT_SIZE + 1,
    })


def figure(nrows: int = 1, ncols: int = 1, height: float | None = None, **kwargs):
    """``plt.subplots`` in the house style: (fig, axes), FIG_WIDTH wide, ``height`` inches tall
    (default 2.8 per row). Raises ValueError for nrows or ncols < 1."""
    for name, value in (("nrows", nrows), ("ncols", ncols)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    import matplotlib.pyplot as plt

    use_house_style()
    return plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, height or 2.8 * nrows), **kwargs)


def wrap_title(title: str, width_in: float, fontsize: float = FONT_SIZE) -> str:
    """``title`` wrapped into lines that fit ``width_in`` inches at ``fontsize`` points (existing
    line breaks are kept)."""
    chars = max(8, int(width_in * 72 / (fontsize * _CHAR_WIDTH)))
    return "\n".join(textwrap.fill(line, chars) for line in str(title).split("\n"))


def _as_hwc(image) -> torch.Tensor:
    """(3, H, W) / (1, H, W) / (H, W) tensor or array -> (H, W, 3) or (H, W) float for imshow."""
    t = torch.as_tensor(image).detach().cpu().float()
    if t.ndim == 3 and t.shape[0] in (1, 3):
        t = t.permute(1, 2, 0)
        return t[..., 0] if t.shape[-1] == 1 else t
    if t.ndim == 2 or (t.ndim == 3 and t.shape[-1] == 3):
        return t
    raise ValueError("images: expected (3, H, W), (1, H, W) or (H, W) images, "
                     f"got {tuple(t.shape)}")


def image_grid(images, titles: Sequence[str] | None = None, ncols: int | None = None,
               height: float | None = None, cmap: str | None = None, fontsize: float = FONT_SIZE):
    """A figure showing ``images`` in a grid with wrapped titles; returns the Figure.

    images: a (B, 3, H, W) / (B, H, W) tensor or a list of (3, H, W) / (H, W) images, values in
    [0, 1] for RGB. titles: B strings (None for no titles), wrapped to the column width.
    ncols: columns (default min(B, 6)); height: inches per row (default: square images plus room
    for the longest title). Raises ValueError for no images, a titles list of another length or a
    fontsize below FONT_SIZE.
    """
    images = list(images)
    if not images:
        raise ValueError("images: expected at least one image, got none")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles: expected {len(images)} titles, got {len(titles)}")
    if fontsize < FONT_SIZE:
        raise ValueError(f"fontsize: expected >= {FONT_SIZE} pt (house style), got {fontsize}")
    ncols = ncols or min(len(images), 6)
    nrows = math.ceil(len(images) / ncols)
    col_in = FIG_WIDTH / ncols
    wrapped = [wrap_title(t, col_in * 0.95, fontsize) for t in titles] if titles else None
    lines = max((w.count("\n") + 1 for w in wrapped), default=0) if wrapped else 0
    if height is None:
        height = col_in * 0.9 + lines * fontsize * 1.3 / 72 + 0.1
    import matplotlib.pyplot as plt

    use_house_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, height * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(_as_hwc(images[i]).clamp(0, 1).numpy(), cmap=cmap, interpolation="nearest")
            if wrapped:
                ax.set_title(wrapped[i], fontsize=fontsize)
    fig.tight_layout()
    return fig


def show_images(images, titles: Sequence[str] | None = None, **kwargs) -> None:
    """:func:`image_grid`, then ``plt.show()`` (returns None, so a cell prints no object)."""
    import matplotlib.pyplot as plt

    image_grid(images, titles, **kwargs)
    plt.show()


def source(obj: Callable | type, docstring: bool = False) -> str:
    """The source code of a function, method or class; its docstring folded to one line unless
    ``docstring=True``. Raises TypeError when ``obj`` has no Python source."""
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise TypeError(f"obj: expected a Python function, method or class, got {obj!r}") from err
    if docstring:
        return src
    lines = src.splitlines()
    node = ast.parse(src).body[0]
    first = node.body[0] if getattr(node, "body", None) else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        indent = lines[first.lineno - 1][: len(lines[first.lineno - 1])
                                         - len(lines[first.lineno - 1].lstrip())]
        lines[first.lineno - 1 : first.end_lineno] = [f'{indent}"""... (see help())"""']
    return "\n".join(lines)


def show_source(*objs, docstring: bool = False) -> None:
    """Print the source of each of ``objs`` (see :func:`source`), separated by a blank line."""
    print("\n\n".join(source(o, docstring) for o in objs))


def patch_mosaic(image: torch.Tensor, patch_size: int, gap: int = 2) -> torch.Tensor:
    """Cut an image into P x P patches and lay them out again with white gaps (chapter 02, ViT).

    image: (C, H, W) or (1, C, H, W) float with H, W multiples of ``patch_size``.
    Returns (H + gap * H / P, W + gap * W / P, C) float, ready for ``imshow``.
    Raises ValueError for another shape, a size that P does not divide, or gap < 0.
    """
    x = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
    if x.ndim != 3:
        raise ValueError(f"image: expected (C, H, W) or (1, C, H, W), got {tuple(image.shape)}")
    C, H, W = x.shape
    P = patch_size
    if isinstance(P, bool) or not isinstance(P, int) or P < 1 or H % P or W % P:
        raise ValueError(f"patch_size: expected an int >= 1 dividing {H} and {W}, got {P!r}")
    if gap < 0:
        raise ValueError(f"gap: expected >= 0, got {gap}")
    tiles = x.reshape(C, H // P, P, W // P, P).permute(1, 3, 0, 2, 4)  # (H/P, W/P, C, P, P)
    tiles = F.pad(tiles, (0, gap, 0, gap), value=1.0)  # (H/P, W/P, C, P+gap, P+gap)
    return tiles.permute(0, 3, 1, 4, 2).reshape(H // P * (P + gap), W // P * (P + gap), C)


def attention_map(attention: torch.Tensor, query: int = 0, prefix: int = 1) -> torch.Tensor:
    """One query's attention over the image patches, as a (g, g) grid (ViT; chapters 02, 10).

    attention: (N, N) or (h, N, N) softmax weights of one image (heads are averaged), N = prefix +
    g * g tokens; ``query``: the row to read ([CLS] = 0); ``prefix``: tokens before the patches
    (1 for [CLS]), dropped from the columns. Returns (g, g) float, summing to at most 1.
    Raises ValueError for another shape, a non-square patch count or a query out of range.
    """
    a = attention.detach().float()
    if a.ndim == 3:
        a = a.mean(0)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"attention: expected (N, N) or (h, N, N), got {tuple(attention.shape)}")
    N = a.shape[0]
    g = math.isqrt(N - prefix) if N > prefix else 0
    if g * g != N - prefix or g == 0:
        raise ValueError(f"attention: expected N = prefix ({prefix}) + a square number of patches, "
                         f"got N = {N}")
    if not 0 <= query < N:
        raise ValueError(f"query: expected an index in [0, {N}), got {query}")
    return a[query, prefix:].reshape(g, g)


def overlay_heatmap(ax, image, heat: torch.Tensor, alpha: float = 0.55, cmap: str = "inferno",
                    title: str | None = None) -> None:
    """Draw ``image`` (3, H, W) on ``ax`` and ``heat`` (h, w), bilinearly resized to H x W and
    scaled to [0, 1], on top of it. Raises ValueError when heat is not 2-D or alpha not in [0, 1].
    """
    if heat.ndim != 2:
        raise ValueError(f"heat: expected an (h, w) map, got {tuple(heat.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha}")
    img = _as_hwc(image)
    H, W = img.shape[:2]
    h = F.interpolate(heat.detach().float()[None, None], size=(H, W), mode="bilinear",
                      align_corners=False)[0, 0]
    h = (h - h.min()) / (h.max() - h.min()).clamp_min(1e-12)
    ax.imshow(img.clamp(0, 1).numpy())
    ax.imshow(h.numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=FONT_SIZE)


def smooth(values: Sequence[float], k: int = 10) -> list[float]:
    """Running mean over ``k`` consecutive values (a loss curve for plotting); len - k + 1 values.
    Raises ValueError when k < 1 or there are fewer than k values."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k!r}")
    v = torch.as_tensor(list(values), dtype=torch.float64)
    if len(v) < k:
        raise ValueError(f"values: expected at least k = {k} values, got {len(v)}")
    return v.unfold(0, k, 1).mean(1).tolist()
