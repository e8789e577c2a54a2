"""Notebook support layer: viz (figures, source, overlays) and widgets (controls with a static
fallback). Headless: the Agg backend is selected here, in the tests only."""

import matplotlib

matplotlib.use("Agg")

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from vlm_course import viz, widgets  # noqa: E402
from vlm_course.models import patchify  # noqa: E402


def test_importing_vlm_course_imports_neither_matplotlib_nor_ipywidgets():
    code = ("import sys, vlm_course, vlm_course.world; "
            "print(any(m in sys.modules for m in ('matplotlib', 'ipywidgets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_image_grid_titles_are_wrapped_readable_and_the_figure_fits_a_column():
    images = torch.rand(5, 3, 16, 16)
    titles = ["a small red circle in the top left of a black background"] * 5
    fig = viz.image_grid(images, titles, ncols=5)
    w, h = fig.get_size_inches()
    assert w == viz.FIG_WIDTH
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 5
    for ax in axes:
        title = ax.title
        assert title.get_fontsize() >= viz.FONT_SIZE
        assert "\n" in title.get_text()  # long titles are wrapped
        assert title.get_text().replace("\n", " ") == titles[0]
    with pytest.raises(ValueError, match="titles: expected 5 titles, got 2"):
        viz.image_grid(images, titles[:2])
    with pytest.raises(ValueError, match="fontsize: expected >= 9"):
        viz.image_grid(images, fontsize=6)
    with pytest.raises(ValueError, match="images: expected at least one"):
        viz.image_grid([])
    with pytest.raises(ValueError, match=r"images: expected \(3, H, W\)"):
        viz.image_grid(torch.rand(2, 5, 4, 4))


def test_source_folds_the_docstring_and_refuses_builtins(capsys):
    src = viz.source(viz.smooth)
    assert src.startswith("def smooth(") and '"""... (see help())"""' in src
    assert "Running mean" not in src and "Running mean" in viz.source(viz.smooth, docstring=True)
    viz.show_source(viz.smooth, viz.wrap_title)
    printed = capsys.readouterr().out
    assert "def smooth(" in printed and "def wrap_title(" in printed
    with pytest.raises(TypeError, match="obj: expected a Python function"):
        viz.source(len)


def test_patch_mosaic_matches_patchify():
    image = torch.rand(3, 16, 24)
    mosaic = viz.patch_mosaic(image, 8, gap=2)
    assert mosaic.shape == (2 * 10, 3 * 10, 3)
    patches = patchify(image[None], 8)[0]  # (N, P*P*C), row-major over the grid
    for n in range(6):
        r, c = divmod(n, 3)
        tile = mosaic[r * 10:r * 10 + 8, c * 10:c * 10 + 8]  # (P, P, C)
        torch.testing.assert_close(tile.reshape(-1), patches[n])
    assert (mosaic[8:10] == 1).all()  # the gaps are white
    with pytest.raises(ValueError, match="patch_size: expected an int >= 1 dividing 16 and 24"):
        viz.patch_mosaic(image, 5)


def test_attention_map_and_overlay():
    attn = torch.softmax(torch.randn(4, 17, 17), dim=-1)  # h=4, [CLS] + 4x4 patches
    grid = viz.attention_map(attn, query=0)
    torch.testing.assert_close(grid.flatten(), attn.mean(0)[0, 1:])
    with pytest.raises(ValueError, match="attention: expected N = prefix"):
        viz.attention_map(torch.rand(11, 11))
    with pytest.raises(ValueError, match=r"query: expected an index in \[0, 17\)"):
        viz.attention_map(attn, query=17)
    fig, ax = viz.figure(1, 1, height=2)
    viz.overlay_heatmap(ax, torch.rand(3, 32, 32), grid, title="[CLS] attention")
    assert len(ax.images) == 2 and ax.images[1].get_array().shape == (32, 32)
    with pytest.raises(ValueError, match="heat: expected an"):
        viz.overlay_heatmap(ax, torch.rand(3, 32, 32), torch.rand(4))


def test_smooth():
    assert viz.smooth([1, 2, 3, 4], k=2) == [1.5, 2.5, 3.5]
    with pytest.raises(ValueError, match="values: expected at least k = 5"):
        viz.smooth([1.0], k=5)


def test_panel_draws_with_exact_initial_values_and_updates_in_place():
    calls = []

    def draw(fig, scale, shape):
        calls.append((scale, shape))
        fig.add_subplot().set_title(f"{shape} {scale}")

    panel = widgets.Panel(draw, {"scale": widgets.Slider("scale s", 0.07, 0.005, 2.0, log=True),
                                 "shape": widgets.Dropdown("shape", ["circle", "star"], "star")})
    assert calls == [(0.07, "star")]
    fig = panel.fig
    panel.update(scale=1.0)
    assert panel.fig is fig and len(fig.axes) == 1 and calls[-1] == (1.0, "star")
    assert fig.get_size_inches()[0] == viz.FIG_WIDTH
    assert panel.summary().splitlines()[0] == "scale s: 0.07 (slider 0.005 to 2, log scale)"
    box = panel.widgets()
    slider, dropdown = box.children
    assert slider.value == 0.07 and slider.description == "scale s"
    assert slider.style.description_width == "initial"  # the label is shown in full
    dropdown.value = "circle"  # a change in the widget redraws the same figure
    assert calls[-1] == (1.0, "circle") and panel.fig is fig
    with pytest.raises(ValueError, match=r"values: unknown controls \['size'\]"):
        panel.update(size=3)


def test_figure_bundle_is_png_data_that_follows_the_figure():
    """interact displays PNG data (shown whether or not pyplot's inline backend is active)."""
    import base64

    panel = widgets.Panel(lambda fig, s: fig.add_subplot().bar(["a", "b"], [s, 1 - s]),
                          {"s": widgets.Slider("share s", 0.2, 0.0, 1.0)})
    first = widgets.figure_bundle(panel.fig)
    assert set(first) == {"image/png", "text/plain"} and "Figure" not in first["text/plain"]
    assert base64.b64decode(first["image/png"]).startswith(b"\x89PNG")
    panel.update(s=0.9)
    assert widgets.figure_bundle(panel.fig)["image/png"] != first["image/png"]
    with pytest.raises(TypeError, match="fig"):
        widgets.figure_bundle("not a figure")


def test_interact_without_a_kernel_prints_only_the_summary(capsys):
    out = widgets.interact(lambda fig, n: fig.add_subplot().plot(range(n)),
                           n=widgets.Slider("number of points", 5, 1, 10))
    assert out is None
    assert capsys.readouterr().out == "number of points: 5 (slider 1 to 10)\n"


def test_controls_reject_bad_values():
    with pytest.raises(ValueError, match=r"value: expected a number in \[0, 1\], got 2"):
        widgets.Slider("x", 2, 0, 1)
    with pytest.raises(ValueError, match="min: a log slider needs min > 0"):
        widgets.Slider("x", 1, 0, 2, log=True)
    with pytest.raises(ValueError, match="value: expected one of"):
        widgets.Dropdown("x", ["a"], "b")
    with pytest.raises(TypeError, match="draw: expected a callable"):
        widgets.Panel(3, {})
    with pytest.raises(TypeError, match="n: expected a Slider or Dropdown"):
        widgets.Panel(lambda fig: None, {"n": 3})
