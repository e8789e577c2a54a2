"""Interactive figures for the notebooks: sliders and dropdowns that redraw one figure in place,
with a static fallback (every chapter).

>>> interact(draw, scale=Slider("scale s", 100.0, 1.0, 316.0, log=True))   # doctest: +SKIP

``draw(fig, **values)`` draws into a cleared matplotlib Figure. :func:`interact` draws it once with
the initial values and displays it as a PNG image (:func:`figure_bundle`), so a book page or a run
without a kernel shows a meaningful picture; in a live kernel the controls appear below it (full
labels, exact initial values) and every change redraws the same figure in place. The cell's text
output is a one-line summary of the controls, never a function or widget repr. In a book build
(``VLM_COURSE_STATIC_WIDGETS=1``) every state is drawn in advance and the controls switch between
the figures without a kernel (:mod:`vlm_course.static_widgets`). ipywidgets,
IPython and matplotlib are imported when :func:`interact` is called, never when ``vlm_course`` is
imported.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .viz import FIG_WIDTH, use_house_style


@dataclass(frozen=True)
class Slider:
    """A numeric control: ``label`` (shown in full), initial ``value`` in [min, max], ``step``
    (default: 1/100 of the range, or 1 for an int slider whose bounds and value are ints), ``log``
    for a log-scale slider (then min > 0 and step is in decades). Raises ValueError when the value
    is outside [min, max], min >= max, step <= 0 or a log slider has min <= 0."""

    label: str
    value: float
    min: float
    max: float
    step: float | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(f"min, max: expected min < max, got {self.min}, {self.max}")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"value: expected a number in [{self.min}, {self.max}], "
                             f"got {self.value}")
        if self.log and self.min <= 0:
            raise ValueError(f"min: a log slider needs min > 0, got {self.min}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step: expected > 0, got {self.step}")

    @property
    def is_int(self) -> bool:
        return not self.log and all(isinstance(v, int) and not isinstance(v, bool)
                                    for v in (self.value, self.min, self.max))

    def describe(self) -> str:
        scale = ", log scale" if self.log else ""
        return f"{self.label}: {self.value:g} (slider {self.min:g} to {self.max:g}{scale})"


@dataclass(frozen=True)
class Dropdown:
    """A choice among ``options`` (strings or numbers) with the initial ``value``. Raises
    ValueError when there are no options or the value is not one of them."""

    label: str
    options: Sequence
    value: object

    def __post_init__(self) -> None:
        if isinstance(self.options, str) or len(self.options) == 0:
            raise ValueError(f"options: expected a non-empty list, got {self.options!r}")
        if self.value not in list(self.options):
            raise ValueError(f"value: expected one of {list(self.options)}, got {self.value!r}")

    def describe(self) -> str:
        return f"{self.label}: {self.value} (one of {', '.join(map(str, self.options))})"


@dataclass(frozen=True)
class Text:
    """A free-text control (a box to type in, e.g. a prompt template) with the initial ``value``;
    the figure is redrawn when the text is submitted (Enter) or the box loses focus. ``examples``:
    other texts the published book offers in a dropdown instead of the box (a page has no kernel to
    draw what a reader types). Raises ValueError when ``value`` or an example is not a string."""

    label: str
    value: str
    examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise ValueError(f"value: expected a string, got {self.value!r}")
        if isinstance(self.examples, str) or not all(isinstance(e, str) for e in self.examples):
            raise ValueError(f"examples: expected a tuple of strings, got {self.examples!r}")

    def describe(self) -> str:
        return f"{self.label}: {self.value!r} (type to change)"


class Panel:
    """One figure and its controls: ``update(**values)`` redraws the figure in place.

    draw: ``draw(fig, **values)`` draws into the (cleared) figure; controls: name -> Slider,
    Dropdown or Text; height: figure height in inches (width is viz.FIG_WIDTH). ``values`` holds the
    current values, ``fig`` the matplotlib Figure (not managed by pyplot, so it is never shown
    twice). Raises TypeError for a draw that is not callable or a control of another type.
    """

    def __init__(self, draw: Callable, controls: dict, height: float = 2.8) -> None:
        if not callable(draw):
            raise TypeError(f"draw: expected a callable draw(fig, **values), got {draw!r}")
        for name, c in controls.items():
            if not isinstance(c, (Slider, Dropdown, Text)):
                raise TypeError(f"{name}: expected a Slider or Dropdown (or Text), "
                                f"got {type(c).__name__}")
        from matplotlib.figure import Figure

        use_house_style()
        self.draw, self.controls = draw, dict(controls)
        self.values = {name: c.value for name, c in controls.items()}
        self.fig = Figure(figsize=(FIG_WIDTH, height))
        self.update()

    def update(self, **values) -> None:
        """Set some values (names of controls) and redraw. Raises ValueError for an unknown
        name."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"values: unknown controls {unknown}; "
                             f"expected {sorted(self.controls)}")
        self.values.update(values)
        self.fig.clear()
        self.draw(self.fig, **self.values)

    def summary(self) -> str:
        """One line per control: its full label, current value and range."""
        return "\n".join(c.describe() for c in self.controls.values())

    def widgets(self):
        """ipywidgets controls bound to :meth:`update` (a VBox), or None without ipywidgets."""
        try:
            import ipywidgets as w
        except ImportError:
            return None
        style, layout = {"description_width": "initial"}, w.Layout(width="95%")
        made = {}
        for name, c in self.controls.items():
            if isinstance(c, Text):
                made[name] = w.Text(value=c.value, description=c.label, continuous_update=False,
                                    style=style, layout=layout)
            elif isinstance(c, Dropdown):
                made[name] = w.Dropdown(options=list(c.options), value=c.value,
                                        description=c.label, style=style, layout=layout)
            elif c.log:
                made[name] = w.FloatLogSlider(
                    value=c.value, base=10, min=math.log10(c.min), max=math.log10(c.max),
                    step=c.step or (math.log10(c.max) - math.log10(c.min)) / 100,
                    description=c.label, readout_format=".3g", style=style, layout=layout)
            elif c.is_int:
                made[name] = w.IntSlider(value=c.value, min=c.min, max=c.max, step=int(c.step or 1),
                                         description=c.label, style=style, layout=layout)
            else:
                made[name] = w.FloatSlider(value=c.value, min=c.min, max=c.max,
                                           step=c.step or (c.max - c.min) / 100,
                                           description=c.label, readout_format=".3g",
                                           style=style, layout=layout)
            made[name].value = c.value  # exactly the initial value, whatever the step grid
        self._on_change = None

        def changed(change, name):
            self.update(**{name: change["new"]})
            if self._on_change is not None:
                self._on_change()

        for name, control in made.items():
            control.observe(lambda change, n=name: changed(change, n), names="value")
        return w.VBox(list(made.values()))


def figure_png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes, rendered at the figure's dpi with a tight bounding box
    (as the inline backend draws it). Raises TypeError when ``fig`` has no ``savefig``."""
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def figure_bundle(fig) -> dict:
    """A display bundle for a matplotlib Figure: ``{"image/png": base64 PNG, "text/plain": ...}``
    (see :func:`figure_png`). Raises TypeError when ``fig`` has no ``savefig``."""
    return {"image/png": base64.b64encode(figure_png(fig)).decode("ascii"),
            "text/plain": "(figure)"}


def _display_widget(box, summary: str) -> None:
    """Displays an ipywidgets layout with ``summary`` as its text/plain (what a page without the
    widget manager shows instead of a widget repr)."""
    from IPython.display import display

    bundle = box._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    data = dict(data or {})
    data["text/plain"] = summary
    display(data, raw=True)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def interact(draw: Callable, height: float = 2.8, **controls) -> None:
    """Show ``draw``'s figure with the initial control values, plus live controls in a kernel.

    draw: ``draw(fig, **values)``; controls: ``name=Slider(...)``, ``name=Dropdown(...)`` or
    ``name=Text(...)``;
    height: inches. The figure is displayed as PNG data (a static image); in a Jupyter kernel
    with ipywidgets the controls follow, and each change redraws that same figure in place. Without
    a kernel (a script) the figure is not shown; the summary line is printed either way.
    In a book build (``$VLM_COURSE_STATIC_WIDGETS`` set, see :mod:`vlm_course.static_widgets`)
    every state is drawn in advance and the controls switch between the figures in the browser,
    without a kernel. Returns None. Raises as :class:`Panel` (and, in a book build, ValueError
    for controls with too many states).
    """
    panel = Panel(draw, controls, height)
    if not _in_kernel():
        print(panel.summary())
        return
    from IPython.display import display

    from .static_widgets import static_build, static_layout

    if static_build():
        _display_widget(static_layout(panel, figure_png), panel.summary())
        return

    # The figure goes out as PNG data, not as a Figure object: a Figure only renders where pyplot's
    # inline backend has registered its formatter (a chapter that never imported pyplot got a
    # "<Figure size ...>" repr instead of the picture).
    handle = display(figure_bundle(panel.fig), raw=True, display_id=True)
    box = panel.widgets()
    if box is None:
        print(panel.summary())
        return
    panel._on_change = lambda: handle.update(figure_bundle(panel.fig), raw=True)
    _display_widget(box, panel.summary())
