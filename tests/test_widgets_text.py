"""widgets.Text: a free-text control (chapter 08's prompt editor), with the static fallback."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from vlm_course import widgets  # noqa: E402


def test_text_control_draws_updates_and_summarises():
    calls = []

    def draw(fig, template, task):
        calls.append((template, task))
        fig.add_subplot().set_title(template.format(task))

    panel = widgets.Panel(draw, {"template": widgets.Text("template", "a photo of a {}."),
                                 "task": widgets.Dropdown("task", ["shape", "colour"], "shape")})
    assert calls == [("a photo of a {}.", "shape")]
    assert panel.summary().splitlines()[0] == "template: 'a photo of a {}.' (type to change)"
    text, dropdown = panel.widgets().children
    assert text.value == "a photo of a {}." and text.continuous_update is False
    text.value = "a {} shape"                 # typing (then Enter) redraws the same figure
    assert calls[-1] == ("a {} shape", "shape") and len(panel.fig.axes) == 1


def test_text_control_static_fallback_and_errors(capsys):
    widgets.interact(lambda fig, t: fig.add_subplot(), t=widgets.Text("template", "a {}"))
    assert capsys.readouterr().out == "template: 'a {}' (type to change)\n"
    with pytest.raises(ValueError, match="value: expected a string"):
        widgets.Text("template", 3)
