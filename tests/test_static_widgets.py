"""The published book's widgets (vlm_course.static_widgets, issue 17): every state drawn in
advance, controls linked client-side to stacks of figures, bounded, clear errors otherwise."""

import matplotlib

matplotlib.use("Agg")

import itertools  # noqa: E402

import pytest  # noqa: E402

from vlm_course import static_widgets as sw  # noqa: E402
from vlm_course import widgets  # noqa: E402
from vlm_course.widgets import Dropdown, Panel, Slider, Text  # noqa: E402

w = pytest.importorskip("ipywidgets")


def draw(fig, n, colour, word="x"):
    """A figure that differs for every state (a bar of height n, a colour, a title)."""
    ax = fig.add_subplot()
    ax.bar([0], [n], color=colour)
    ax.set(ylim=(0, 10), title=f"{word} {n:g} {colour}")


def test_slider_values_follow_the_step_grid_with_the_exact_initial_value():
    labels, values, index = sw.control_values("s", Slider("s", 100.0, 1.0, 316.0, log=True,
                                                          step=0.25))
    assert len(values) == 11 and values[0] == 1.0 and values[-1] == 316.0  # 316 ~ 10 ** 2.5
    assert values[index] == 100.0 and labels[index] == "100"
    assert values == sorted(values) and len(set(labels)) == len(labels)
    _, values, index = sw.control_values("r", Slider("r", 0.75, 0.0, 0.9, step=0.15))
    assert len(values) == 7 and values[index] == 0.75 and values[-1] == 0.9
    labels, values, index = sw.control_values("k", Slider("k", 3, 0, 8))
    assert values == list(range(9)) and index == 3 and labels[3] == "3"
    assert all(isinstance(v, int) for v in values)


def test_dropdown_and_text_values():
    assert sw.control_values("d", Dropdown("d", (8, 16, 32), 16)) == (["8", "16", "32"],
                                                                      [8, 16, 32], 1)
    labels, values, index = sw.control_values("t", Text("t", "a {}", examples=("b {}", "a {}")))
    assert values == ["a {}", "b {}"] and index == 0


def test_unbounded_or_unreachable_controls_are_refused_by_name():
    with pytest.raises(ValueError, match="scale: a float Slider needs a step"):
        sw.control_values("scale", Slider("scale s", 1.0, 0.0, 2.0))
    with pytest.raises(ValueError, match=r"ratio: step 0.01 gives 101 values .* at most 40"):
        sw.control_values("ratio", Slider("ratio", 0.5, 0.0, 1.0, step=0.01))
    with pytest.raises(ValueError, match="tau: the initial value 0.07 is not on the step grid"):
        sw.control_values("tau", Slider("tau", 0.07, 0.005, 2.0, log=True, step=0.25))
    with pytest.raises(ValueError, match=r"caption: a Text control needs examples=\(\.\.\.\)"):
        sw.control_values("caption", Text("caption", "a red circle"))
    with pytest.raises(ValueError, match=r"controls: n 9 x colour 5 = 45 states .* at most 40"):
        sw.state_plan({"n": Slider("n", 0, 0, 8),
                       "colour": Dropdown("colour", ("C0", "C1", "C2", "C3", "C4"), "C0")})
    with pytest.raises(ValueError, match="examples: expected a tuple of strings"):
        Text("t", "a", examples="abc")


def _all(widget):
    """Every widget reachable from ``widget`` through children."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all(child)


def test_static_layout_precomputes_every_state_and_links_controls_to_stacks():
    controls = {"n": Slider("bar height", 2, 0, 4, step=2),
                "colour": Dropdown("bar colour", ("C0", "C1"), "C1"),
                "word": Text("title", "x", examples=("y",))}
    panel = Panel(draw, controls, height=2.0)
    box = sw.static_layout(panel, widgets.figure_png)
    stack, controls_box = box.children
    sliders = list(controls_box.children)
    assert [type(c).__name__ for c in sliders] == ["SelectionSlider", "Dropdown", "Dropdown"]
    assert [c.index for c in sliders] == [1, 1, 0]  # the initial values
    assert [c.description for c in sliders] == ["bar height", "bar colour", "title"]
    assert panel.values == {"n": 2, "colour": "C1", "word": "x"}  # left at the initial values
    # 3 x 2 x 2 = 12 images, each the PNG of its own state, all different
    images = [x for x in _all(stack) if isinstance(x, w.Image)]
    assert len(images) == 12 and len({bytes(i.value) for i in images}) == 12
    for n, c, t in itertools.product(range(3), range(2), range(2)):
        image = stack.children[n].children[c].children[t]
        panel.update(n=[0, 2, 4][n], colour=["C0", "C1"][c], word=["x", "y"][t])
        assert bytes(image.value) == widgets.figure_png(panel.fig)
    # every stack follows its control's index: 1 outer, 3 middle, 6 inner stacks
    stacks = [x for x in _all(stack) if isinstance(x, w.Stack)]
    assert len(stacks) == 1 + 3 + 6 and len(box._vlm_links) == len(stacks)
    linked = {id(link.target[0]): link for link in box._vlm_links}
    assert set(linked) == {id(s) for s in stacks}
    for level, group in enumerate(([stack], stack.children,
                                   [m for s in stack.children for m in s.children])):
        for s in group:
            link = linked[id(s)]
            assert isinstance(link, w.widgets.widget_link.DirectionalLink)
            assert link.source == (sliders[level], "index")
            assert link.target == (s, "selected_index")
            assert s.selected_index == sliders[level].index


def test_interact_in_a_book_build_shows_the_widget_layout_and_no_separate_figure(monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display",
                        lambda data, **kwargs: shown.append((data, kwargs)))
    monkeypatch.setenv(sw.STATIC_ENV, "1")
    widgets.interact(draw, n=Slider("bar height", 2, 0, 4, step=2),
                     colour=Dropdown("bar colour", ("C0", "C1"), "C1"))
    assert len(shown) == 1
    data = shown[0][0]
    assert "application/vnd.jupyter.widget-view+json" in data and "image/png" not in data
    assert data["text/plain"] == "bar height: 2 (slider 0 to 4)\nbar colour: C1 (one of C0, C1)"
    monkeypatch.setenv(sw.STATIC_ENV, "1")
    with pytest.raises(ValueError, match="word: a Text control needs examples"):
        widgets.interact(draw, n=Slider("n", 2, 0, 4), colour=Dropdown("c", ("C0",), "C0"),
                         word=Text("caption", "x"))


def test_interact_live_in_a_kernel_without_the_variable(monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display",
                        lambda data, **kwargs: shown.append((data, kwargs)))
    monkeypatch.delenv(sw.STATIC_ENV, raising=False)
    widgets.interact(draw, n=Slider("bar height", 2.0, 0.0, 4.0),
                     colour=Dropdown("bar colour", ("C0", "C1"), "C1"))
    assert "image/png" in shown[0][0] and shown[0][1]["display_id"] is True  # updated in place
    assert "application/vnd.jupyter.widget-view+json" in shown[1][0]
    assert sw.static_build() is False
    monkeypatch.setenv(sw.STATIC_ENV, "0")
    assert sw.static_build() is False
