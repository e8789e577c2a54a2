"""Widget demos that respond without a kernel: the published book's version of
:func:`vlm_course.widgets.interact` (every chapter; issue 17).

A book page has no Python behind it. When the book is built (the Makefile's book targets set
``VLM_COURSE_STATIC_WIDGETS=1``), ``interact`` draws every state of the demo in advance and emits
an ipywidgets layout that needs only the widget state embedded in the page:

- each control becomes a selection control whose ``index`` picks one of its values: a Slider a
  ``SelectionSlider`` over its step grid, a Dropdown a ``Dropdown``, a Text a ``Dropdown`` of its
  ``examples``;
- the figures are ``Image`` widgets (PNG) in nested ``Stack`` widgets: the outer stack has one
  child per value of the first control, each child a stack over the second control's values, ...,
  down to the images; every stack's ``selected_index`` is ``jsdlink``-ed to its control's
  ``index``, so the browser's widget manager switches figures client-side.

The number of states is the product of the controls' value counts and must stay at most
:data:`MAX_STATES`; a Slider without a coarse ``step`` or a Text without ``examples`` cannot be
precomputed and raises ValueError naming the control.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable

STATIC_ENV = "VLM_COURSE_STATIC_WIDGETS"
MAX_STATES = 40


def static_build() -> bool:
    """True when ``$VLM_COURSE_STATIC_WIDGETS`` asks for precomputed widgets (a book build)."""
    return os.environ.get(STATIC_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def control_values(name: str, control) -> tuple[list[str], list, int]:
    """The values a control can take in the static book: (labels, values, initial index).

    Slider: its step grid from min to max (log sliders: in decades), the initial value must lie on
    it; Dropdown: its options; Text: its value followed by its ``examples``. Raises ValueError
    (naming ``name``) for a Slider without a step grid of at most MAX_STATES values, an initial
    value off the grid, or a Text without examples.
    """
    from .widgets import Dropdown, Slider, Text

    if isinstance(control, Dropdown):
        values = list(control.options)
        return [str(v) for v in values], values, values.index(control.value)
    if isinstance(control, Text):
        if not control.examples:
            raise ValueError(f"{name}: a Text control needs examples=(...) for the static book "
                             "(the values a reader can pick without a kernel), got none")
        values = [control.value] + [e for e in control.examples if e != control.value]
        return list(values), values, 0
    if not isinstance(control, Slider):
        raise TypeError(f"{name}: expected a Slider, Dropdown or Text, "
                        f"got {type(control).__name__}")
    step = control.step or (1 if control.is_int else None)
    if step is None:
        raise ValueError(f"{name}: a float Slider needs a step for the static book (at most "
                         f"{MAX_STATES} values from min to max), got step=None")
    lo, hi = (math.log10(control.min), math.log10(control.max)) if control.log else \
        (control.min, control.max)
    # Grid points min + k * step up to max; a max within 1% of a step of the next grid point
    # counts as that point (e.g. 316 for 10 ** 2.5 on a log slider in quarter decades).
    count = math.floor((hi - lo) / step + 0.01) + 1
    if count > MAX_STATES:
        raise ValueError(f"{name}: step {step:g} gives {count} values from {control.min:g} to "
                         f"{control.max:g}; expected at most {MAX_STATES} (a coarser step)")
    grid = [lo + k * step for k in range(count)]
    values = [10 ** g for g in grid] if control.log else grid
    values[0] = control.min
    if grid[-1] >= hi - 0.01 * step:
        values[-1] = control.max
    if control.is_int:
        values = [int(round(v)) for v in values]
    at = [i for i, v in enumerate(values) if _close(v, control.value)]
    if not at:
        raise ValueError(f"{name}: the initial value {control.value:g} is not on the step grid "
                         f"({', '.join(f'{v:.4g}' for v in values[:6])}, ...); choose min and "
                         "step so that it is")
    values[at[0]] = control.value  # exactly the initial value, as the live slider shows it
    return _labels(values), values, at[0]


def _labels(values: list) -> list[str]:
    """Distinct short labels for numbers (3 significant digits, more where two would clash)."""
    for digits in range(3, 12):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(v) for v in values]


def state_plan(controls: dict) -> list[tuple[str, list[str], list, int]]:
    """(name, labels, values, initial index) per control, in order. Raises ValueError when the
    product of the value counts exceeds MAX_STATES (or as :func:`control_values`)."""
    plan = [(name, *control_values(name, c)) for name, c in controls.items()]
    total = math.prod(len(values) for _, _, values, _ in plan)
    if total > MAX_STATES:
        counts = " x ".join(f"{name} {len(values)}" for name, _, values, _ in plan)
        raise ValueError(f"controls: {counts} = {total} states to precompute for the static "
                         f"book; expected at most {MAX_STATES} (fewer or coarser controls)")
    return plan


def static_layout(panel, render_png: Callable) -> object:
    """The kernel-free layout of a :class:`~vlm_course.widgets.Panel`: an ipywidgets ``VBox``
    holding the nested stacks of precomputed figures and the selection controls (see the module
    docstring). ``render_png(fig) -> bytes`` renders the panel's figure. Draws every state once
    and leaves the panel at its initial values. Raises as :func:`state_plan`.
    """
    import ipywidgets as w

    plan = state_plan(panel.controls)
    initial = dict(panel.values)
    style, layout = {"description_width": "initial"}, w.Layout(width="95%")
    controls = []
    for name, labels, _, index in plan:
        label = panel.controls[name].label
        if type(panel.controls[name]).__name__ == "Slider":
            control = w.SelectionSlider(options=labels, index=index, description=label,
                                        style=style, layout=layout)
        else:
            control = w.Dropdown(options=labels, index=index, description=label, style=style,
                                 layout=layout)
        controls.append(control)

    images = {}
    for indices in itertools.product(*(range(len(values)) for _, _, values, _ in plan)):
        chosen = zip(plan, indices, strict=True)
        panel.update(**{name: values[i] for (name, _, values, _), i in chosen})
        images[indices] = w.Image(value=render_png(panel.fig), format="png",
                                  layout=w.Layout(max_width="100%", height="auto"))
    panel.update(**initial)

    links = []

    def nest(prefix: tuple) -> object:
        level = len(prefix)
        if level == len(plan):
            return images[prefix]
        children = [nest(prefix + (i,)) for i in range(len(plan[level][2]))]
        stack = w.Stack(children, selected_index=plan[level][3])
        links.append(w.jsdlink((controls[level], "index"), (stack, "selected_index")))
        return stack

    root = nest(())
    box = w.VBox([root, w.VBox(controls)])
    box._vlm_links = links  # keep the link widgets alive with the layout (tests read them)
    return box
