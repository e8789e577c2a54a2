"""ShapeWorld configuration: the vocabulary, the canvas and the held-out compositions.

Chapter 03 (datasets) introduces ShapeWorld, the course's embedded image-text world
(COURSE_DESIGN §5).  :class:`WorldConfig` is a frozen dataclass; every field is validated in
``__post_init__`` and a bad value raises ``ValueError`` naming the field and the allowed values.

The vocabulary (``shapes``, ``colours``) is drawn from two libraries, :data:`SHAPE_LIBRARY` and
:data:`COLOUR_LIBRARY`; class ids index ``cfg.shapes`` / ``cfg.colours`` in the order given, so
``cfg.shapes[labels["shape"][b]]`` is the primary object's shape name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

#: Shapes the renderer can draw (signed distance functions live in ``world/shapes.py``).
SHAPE_LIBRARY: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "cross", "star", "heart", "ring", "hexagon",
)

#: Colour names a caption can use, with their RGB values in [0, 1].
COLOUR_LIBRARY: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.15, 0.35, 1.00),
    "yellow": (0.98, 0.90, 0.10),
    "purple": (0.62, 0.22, 0.85),
    "orange": (1.00, 0.55, 0.05),
    "cyan": (0.05, 0.85, 0.90),
    "white": (1.00, 1.00, 1.00),
    "grey": (0.55, 0.55, 0.55),
    "pink": (1.00, 0.55, 0.75),
    "brown": (0.55, 0.33, 0.15),
}

#: The two sizes and their default radius as a fraction of a grid cell's side.
SIZE_NAMES: tuple[str, ...] = ("small", "large")

#: 3x3 grid positions in row-major order (cell id = 3 * row + col); row 0 is the top of the image.
POSITION_NAMES: tuple[str, ...] = (
    "top left", "top middle", "top right",
    "middle left", "centre", "middle right",
    "bottom left", "bottom middle", "bottom right",
)

BACKGROUNDS: tuple[str, ...] = ("plain", "textured", "mixed")

DEFAULT_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star", "heart", "ring")
DEFAULT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan", "white")

#: Smallest object radius in pixels that still shows its shape (checked against canvas * scale).
MIN_RADIUS_PX = 3.0
CANVAS_RANGE = (32, 128)
MAX_OBJECTS = len(POSITION_NAMES)


def default_heldout(colours: tuple[str, ...],
                    shapes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A "shifted diagonal" of colour-shape pairs: colour i is held out with shape (i + 2) mod S.

    With as many colours as shapes (8 x 8 by default) every colour and every shape occurs in exactly
    one held-out pair, so each still appears in train with 7 partners; for the defaults this gives
    8 of the 64 compositions (red triangle, green diamond, blue cross, yellow star, ...).
    Raises nothing; fewer than 2 colours or shapes give no held-out pair.
    """
    n = min(len(colours), len(shapes))
    if n < 2:
        return ()
    return tuple((colours[i], shapes[(i + 2) % len(shapes)]) for i in range(n))


def _fail(name: str, allowed: str, got) -> ValueError:
    return ValueError(f"WorldConfig.{name}: expected {allowed}, got {got!r}")


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines a ShapeWorld; the same config + seed always gives the same scenes.

    Fields
    ------
    canvas: image side H = W in pixels, 32..128 (default 64).
    shapes, colours: the vocabulary (names from :data:`SHAPE_LIBRARY` / :data:`COLOUR_LIBRARY`);
        class ids are positions in these tuples.
    min_objects, max_objects: objects per scene, 1 <= min <= max <= 9 (one object per grid cell).
    size_scale: radius of a (small, large) object as a fraction of a grid cell's side (canvas / 3);
        0 < small < large <= 0.5 - 1.5 / canvas (an object plus its one-pixel anti-aliasing ramp
        stays inside its cell), and small * canvas / 3 >= 3 pixels.
    background: "plain" (black), "textured" (dark random stripes/blobs) or "mixed" (per scene).
    caption_noise: probability in [0, 1] that a caption has one attribute word replaced by a
        wrong one.
    n_captions: captions per scene, 5..8 (COCO has 5 per image).
    heldout: colour-shape pairs never shown in train/val (images or captions); ``None`` means
        :func:`default_heldout`. Every colour and shape must still occur in some allowed pair.
    test_heldout_fraction: probability that a test scene's primary object is a held-out pair.
    seed: the world seed.

    Raises ``ValueError`` naming the field (``WorldConfig.<field>: expected ..., got ...``) for any
    value outside the ranges above.
    """

    canvas: int = 64
    shapes: tuple[str, ...] = DEFAULT_SHAPES
    colours: tuple[str, ...] = DEFAULT_COLOURS
    min_objects: int = 1
    max_objects: int = 3
    size_scale: tuple[float, float] = (0.30, 0.44)
    background: str = "plain"
    caption_noise: float = 0.0
    n_captions: int = 5
    heldout: tuple[tuple[str, str], ...] | None = None
    test_heldout_fraction: float = 0.5
    seed: int = 0
    sizes: tuple[str, ...] = field(default=SIZE_NAMES, init=False)
    positions: tuple[str, ...] = field(default=POSITION_NAMES, init=False)

    def __post_init__(self) -> None:
        self._check_int("canvas", self.canvas, *CANVAS_RANGE)
        for name, library in (("shapes", SHAPE_LIBRARY), ("colours", tuple(COLOUR_LIBRARY))):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or len(value) < 2:
                raise _fail(name, f"a tuple of at least 2 names from {library}", value)
            unknown = [v for v in value if v not in library]
            if unknown:
                raise _fail(name, f"names from {library} (unknown: {unknown})", value)
            if len(set(value)) != len(value):
                raise _fail(name, "distinct names", value)
            object.__setattr__(self, name, tuple(value))
        self._check_int("min_objects", self.min_objects, 1, MAX_OBJECTS)
        self._check_int("max_objects", self.max_objects, self.min_objects, MAX_OBJECTS)
        self._check_sizes()
        if self.background not in BACKGROUNDS:
            raise _fail("background", f"one of {BACKGROUNDS}", self.background)
        for name in ("caption_noise", "test_heldout_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0.0 <= float(value) <= 1.0
            ):
                raise _fail(name, "a number in [0, 1]", value)
        self._check_int("n_captions", self.n_captions, 5, 8)
        self._check_int("seed", self.seed, 0, 2**63 - 1)
        self._check_heldout()

    @staticmethod
    def _check_int(name: str, value, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
            raise _fail(name, f"an int in [{low}, {high}]", value)

    def _check_sizes(self) -> None:
        scale = self.size_scale
        ok = (
            isinstance(scale, (tuple, list)) and len(scale) == 2
            and all(isinstance(s, (int, float)) and 0.0 < s < 0.5 for s in scale)
            and scale[0] < scale[1]
        )
        if not ok:
            raise _fail("size_scale",
                        "(small, large) fractions of a cell with 0 < small < large < 0.5", scale)
        object.__setattr__(self, "size_scale", (float(scale[0]), float(scale[1])))
        largest = 0.5 - 1.5 / self.canvas
        if scale[1] > largest:
            raise _fail("size_scale", f"a large size <= {largest:.4f} at canvas={self.canvas} "
                        "(the object and its edge ramp must stay inside its grid cell)", scale)
        smallest = scale[0] * self.canvas / 3
        if smallest < MIN_RADIUS_PX:
            need = math.ceil(3 * MIN_RADIUS_PX / scale[0])
            raise ValueError(
                f"WorldConfig.canvas: canvas={self.canvas} is too small for size_scale={scale}: "
                f"a small object would have radius {smallest:.2f} px < {MIN_RADIUS_PX} px; "
                f"allowed: canvas >= {need} (and <= {CANVAS_RANGE[1]}) or a larger size_scale[0]"
            )

    def _check_heldout(self) -> None:
        if self.heldout is None:
            object.__setattr__(self, "heldout", default_heldout(self.colours, self.shapes))
            return
        if isinstance(self.heldout, str) or not isinstance(self.heldout, (tuple, list)):
            raise _fail("heldout", "None or a tuple of (colour, shape) pairs", self.heldout)
        pairs = []
        for pair in self.heldout:
            if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                    or pair[0] not in self.colours or pair[1] not in self.shapes):
                raise _fail("heldout", f"(colour, shape) pairs with colour in {self.colours} and "
                            f"shape in {self.shapes}", pair)
            pairs.append((pair[0], pair[1]))
        held = set(pairs)
        allowed = [(c, s) for c in self.colours for s in self.shapes if (c, s) not in held]
        missing = [c for c in self.colours if c not in {a for a, _ in allowed}]
        missing += [s for s in self.shapes if s not in {b for _, b in allowed}]
        if missing:
            raise _fail("heldout", "pairs that leave every colour and shape in some train pair "
                        f"(these would vanish from train: {missing})", self.heldout)
        object.__setattr__(self, "heldout", tuple(dict.fromkeys(pairs)))

    # ------------------------------------------------------------------ derived helpers
    def replace(self, **changes) -> WorldConfig:
        """A copy with some fields changed (validated again).  Raises ``TypeError`` for an unknown
        field and ``ValueError`` for a bad value."""
        return replace(self, **changes)

    @classmethod
    def tiny(cls) -> WorldConfig:
        """32x32 canvas, 1-2 objects: the smallest world, for fast tests."""
        return cls(canvas=32, max_objects=2)

    @property
    def compositions(self) -> tuple[tuple[str, str], ...]:
        """All (colour, shape) pairs; composition id = colour_id * len(shapes) + shape_id."""
        return tuple((c, s) for c in self.colours for s in self.shapes)

    @property
    def heldout_ids(self) -> tuple[int, ...]:
        """Composition ids of the held-out pairs (see :attr:`compositions`)."""
        return tuple(self.colours.index(c) * len(self.shapes) + self.shapes.index(s)
                     for c, s in self.heldout)

    @property
    def colour_rgb(self) -> tuple[tuple[float, float, float], ...]:
        """RGB in [0, 1] for each colour in :attr:`colours` (same order)."""
        return tuple(COLOUR_LIBRARY[c] for c in self.colours)

    def to_dict(self) -> dict:
        """The init fields as a plain JSON-friendly dict (lists for tuples), e.g. for a checkpoint
        card; :meth:`from_dict` is its inverse."""
        def plain(value):
            return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, d: dict) -> WorldConfig:
        """Rebuild a config written by :meth:`to_dict` (a checkpoint card, ``run.json``).

        JSON lists become tuples (``heldout`` a tuple of pairs).  Every field is validated again.

        Raises:
            TypeError: ``d`` is not a dict.
            ValueError: ``d`` has a key that is not a WorldConfig field (the unknown keys and the
                known fields are listed), or a value :class:`WorldConfig` rejects.
        """
        if not isinstance(d, dict):
            raise TypeError(f"d must be a dict of WorldConfig fields, got {type(d).__name__}")
        known = [f.name for f in fields(cls) if f.init]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"d: unknown WorldConfig fields {unknown}; known fields: {known}")
        values = dict(d)
        for key, value in values.items():
            if key == "heldout" and value is not None:
                values[key] = tuple(tuple(p) if isinstance(p, list) else p for p in value)
            elif isinstance(value, list):
                values[key] = tuple(value)
        return cls(**values)
