"""The notebooks as a student meets them: JupyterLab in a real browser (issue 18).

Starts the course's JupyterLab (the project's settings override from ``jupyter-config/``, bound to
127.0.0.1) and drives the system Chromium through every chapter ``notebooks/NN_*.md``, opened by
its plain URL as a student double-clicks it. For each chapter it checks that:

1. the ``.md`` source opens as a *notebook* by default (not as a text file);
2. every markdown cell is rendered (jupyterlab-myst) with no raw MyST syntax in the visible text
   (no ``{role}`` or ```` ```{directive} ````, no ``:class:`` option lines, no ``(label)=``), no raw
   TeX command outside rendered math, every cell with ``$...$`` math holds rendered KaTeX, and
   every citation key is shown as text;
3. every ``{admonition}`` with ``:class: dropdown`` (the answers) is a folded ``<details>``;
4. the notebook runs, in the browser's kernel, up to and including its first widget cell
   (chapters 00 and 04: every cell) with no error output;
5. the widget cell shows exactly one figure and no text output (no reprs, no object dumps), its
   control labels are shown in full, the figure is not redrawn before anyone touches a control
   (the initial values are exact: a slider snapping to its step grid would redraw it), and moving
   the first control redraws the figure (its PNG changes);
6. the page made no request outside 127.0.0.1.

Executing every notebook headless remains nbval's job (``make test``'s notebooks step). Skipped
with instructions where Chromium or Playwright is missing, and a failure on CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import browser
import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
RUN_FULLY = ("00", "04")
RUN_TIMEOUT = float(os.environ.get("VLM_COURSE_LAB_TIMEOUT", "900"))

# Raw MyST as it shows once rendered: a role (its backticks become code, so "{cite}key"), a
# directive fence, an option line (":class: dropdown") or a target label ("(sec-x)=").
RAW_MYST = re.compile(r"\{(?:cite(?::\w+)?|ref|doc|numref|eq|math|term|abbr)\}|\{[a-z][\w:-]*\}`"
                      r"|```\{|:::\s*\{|^\s*:[a-z-]+:\s|^\s*\([\w-]+\)=\s*$", re.M)
RAW_TEX = re.compile(r"\\(?:frac|mathcal|mathbf|sum|log|exp|tau|cdot|top|le|ge|in|mathrm)\b")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
DROPDOWN = re.compile(r"^(`{3,}|:{3,})\{admonition\}[^\n]*\n(?::[^\n]*\n)*?:class:[^\n]*dropdown",
                      re.M)
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
WIDGET = re.compile(r"\binteract\(")

CELLS_JS = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  return nb.widgets.map((cell, i) => {
    const kind = cell.model.type;
    const out = {kind, index: i, source: cell.model.sharedModel.getSource()};
    if (kind === 'markdown') {
      const r = cell.node.querySelector('.jp-MarkdownOutput, .jp-RenderedMarkdown, .myst');
      out.rendered = !!r && cell.rendered;
      if (r) {
        const copy = r.cloneNode(true);
        copy.querySelectorAll('.katex-mathml, annotation, style, script').forEach(e => e.remove());
        out.text = copy.textContent;
        out.katex = r.querySelectorAll('.katex').length;
        out.details = Array.from(r.querySelectorAll('details')).map(d => d.open);
      }
    } else if (kind === 'code') {
      out.count = cell.model.executionCount;
      out.outputs = cell.model.outputs.toJSON();
    }
    return out;
  });
}"""


def markdown_sources(path: Path) -> list[str]:
    return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]


def test_every_chapter_has_a_widget():
    """Cheap, browser-free: every chapter has an interactive demo for the browser test to move."""
    lacking = [p.name for p in CHAPTERS
               if not any(c.cell_type == "code" and WIDGET.search(c.source)
                          for c in jupytext.read(p).cells)]
    assert not lacking, f"chapters without a vlm_course.widgets.interact cell: {lacking}"


def first_widget_cell(path: Path) -> int:
    cells = jupytext.read(path).cells
    hits = [i for i, c in enumerate(cells) if c.cell_type == "code" and WIDGET.search(c.source)]
    assert hits, (f"{path.name} has no widget cell (vlm_course.widgets.interact): every chapter "
                  "has one interactive demo")
    return hits[0]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab on 127.0.0.1 with the project's settings and a Chromium context."""
    executable = browser.chromium_or_skip()
    tmp = tmp_path_factory.mktemp("jupyterlab")
    user = tmp / "user-settings" / "@jupyterlab" / "notebook-extension"
    user.mkdir(parents=True)
    # Render every cell at once (JupyterLab otherwise renders only what is scrolled into view).
    (user / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    # Never save: the run's outputs must not land in the working tree's notebooks.
    docmanager = tmp / "user-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    port = browser.free_port()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_CONFIG_PATH=str(ROOT / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONPATH=str(ROOT),
               PYTHONHASHSEED="0")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
               "--expose-app-in-browser", f"--ServerApp.root_dir={ROOT}",
               f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    with browser.serve(command, f"{url}/api/status", tmp / "jupyterlab.log", env=env, cwd=ROOT):
        with browser.chromium(executable) as context:
            context.set_default_timeout(120_000)
            yield url, context


def open_chapter(context, url: str, source: Path):
    page = context.new_page()
    log = browser.PageLog(page)
    # A fresh named workspace per chapter: nothing restored from an earlier page.
    page.goto(f"{url}/lab/workspaces/ch{source.stem[:2]}/tree/notebooks/{source.name}")
    page.wait_for_function(
        """(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                       return !!w && !!w.context && w.context.path === path; }""",
        arg=f"notebooks/{source.name}", timeout=180_000)
    try:
        page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.context.isReady", timeout=180_000)
    except Exception as err:  # e.g. jupytext refusing a pair whose .ipynb is newer than the .md
        raise AssertionError(f"{source.name} did not open: {log.console_errors[-3:]}") from err
    return page, log


def cells(page) -> list[dict]:
    return page.evaluate(CELLS_JS)


def run_and_wait(page, command: str, last: int, what: str) -> list[dict]:
    """Executes a JupyterLab notebook command and waits until code cells 0..last have run."""
    page.evaluate("(c) => window.jupyterapp.commands.execute(c)", command)
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        state = cells(page)
        pending = [c["index"] for c in state[:last + 1]
                   if c["kind"] == "code" and c["source"].strip() and c["count"] is None]
        busy = page.evaluate("""() => { const s = window.jupyterapp.shell.currentWidget
                               .sessionContext; return s.kernelDisplayStatus; }""")
        if not pending and busy == "idle":
            return state
        if os.environ.get("VLM_COURSE_LAB_VERBOSE"):
            print(f"{what}: waiting for cells {pending[:3]} (kernel {busy})", file=sys.stderr)
        errors = errors_in(state[:last + 1])
        assert not errors, f"{what}: error output: {errors[0]}"
        time.sleep(2)
    pytest.fail(f"{what}: cells {pending[:5]}... had not run after {RUN_TIMEOUT:.0f} s")


def errors_in(state: list[dict]) -> list[str]:
    found = []
    for c in state:
        for o in c.get("outputs") or []:
            if o["output_type"] == "error":
                found.append(f"cell {c['index']}: {o['ename']}: {o['evalue']}")
            elif o["output_type"] == "stream" and "Traceback" in "".join(o["text"]):
                found.append(f"cell {c['index']}: traceback on {o['name']}")
    return found


def figure_png(page, index: int) -> str | None:
    return page.evaluate("""(i) => { const cell = window.jupyterapp.shell.currentWidget.content
        .widgets[i]; const img = cell.node.querySelector('.jp-OutputArea img');
        return img ? img.getAttribute('src') : null; }""", index)


def check_rendering(page, source: Path) -> None:
    expected = markdown_sources(source)
    page.wait_for_function(  # every markdown cell rendered by jupyterlab-myst
        """([n, sel]) => { const nb = window.jupyterapp.shell.currentWidget.content;
                    const md = nb.widgets.filter(c => c.model.type === 'markdown');
                    return md.length === n &&
                        md.every(c => c.rendered && c.node.querySelector(sel));
                  }""",
        arg=[len(expected), ".jp-MarkdownOutput, .jp-RenderedMarkdown, .myst"], timeout=180_000)
    time.sleep(1)  # let the last renderers settle
    md = [c for c in cells(page) if c["kind"] == "markdown"]
    assert [c["source"].strip() for c in md] == [s.strip() for s in expected], (
        f"{source.name}: the notebook JupyterLab opened differs from the source")
    for cell, src in zip(md, expected, strict=True):
        where = f"{source.name} markdown cell {cell['index']}"
        text = cell["text"]
        raw = RAW_MYST.search(text)
        assert not raw, f"{where} shows raw MyST {raw.group(0)!r}: {text[:200]!r}"
        tex = RAW_TEX.search(text)
        assert not tex, f"{where} shows raw TeX {tex.group(0)!r}"
        if MATH.search(src):
            assert cell["katex"] > 0, f"{where}: its $...$ math is not rendered"
        for keys in CITE.findall(src):
            for key in keys.split(","):
                assert key.strip() in text, f"{where}: citation {key.strip()} not shown"
        folded = len(DROPDOWN.findall(src))
        assert len(cell["details"]) >= folded, (
            f"{where}: {folded} answer dropdown(s) in the source, {len(cell['details'])} "
            "<details> rendered")
        assert not any(cell["details"]), f"{where}: answers are open before a click"


def check_widget(page, source: Path, state: list[dict], index: int) -> None:
    where = f"{source.name} widget cell {index}"
    outputs = state[index]["outputs"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    kinds = [(o["output_type"], sorted(o.get("data", {})) or o.get("name")) for o in outputs]
    assert len(images) == 1, f"{where}: expected one figure, got {len(images)}: outputs {kinds}"
    assert views, f"{where}: no live controls (ipywidgets view) under the figure"
    text = [o for o in outputs if o["output_type"] in ("stream", "execute_result")]
    assert not text, f"{where}: text output {text[0]!r:.300}: expected none (no reprs or dumps)"
    page.wait_for_function(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node"
        ".querySelector('.widget-box, .jupyter-widgets')", arg=index, timeout=60_000)
    labels = page.evaluate("""(i) => Array.from(window.jupyterapp.shell.currentWidget.content
        .widgets[i].node.querySelectorAll('.widget-label')).filter(l => l.offsetParent)
        .map(l => [l.textContent, l.scrollWidth, l.clientWidth])""", index)
    assert labels, f"{where}: no control labels shown"
    cut = [t for t, scroll, client in labels if scroll > client + 1]
    assert not cut, f"{where}: labels cut short on screen: {cut}"
    before = figure_png(page, index)
    time.sleep(3)
    assert figure_png(page, index) == before, (
        f"{where}: the figure was redrawn before any control moved (initial value not exact)")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    moved = move_first_control(cell)
    page.wait_for_function(
        """([i, old]) => { const img = window.jupyterapp.shell.currentWidget.content.widgets[i]
            .node.querySelector('.jp-OutputArea img');
            return img && img.getAttribute('src') !== old; }""",
        arg=[index, before], timeout=120_000)
    after = cells(page)[index]["outputs"]
    assert not errors_in([{"index": index, "outputs": after}]), f"{where}: error after {moved}"


def move_first_control(cell) -> str:
    """Moves the first control of a widget cell as a person would; returns what it did."""
    control = cell.locator(".widget-slider, .widget-dropdown, .widget-text").first
    control.scroll_into_view_if_needed()
    classes = control.get_attribute("class") or ""
    if "widget-dropdown" in classes:
        select = control.locator("select")
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        target = next(o for o in options if o != current)
        select.select_option(label=target)
        return f"dropdown {current!r} -> {target!r}"
    if "widget-text" in classes:
        box = control.locator("input")
        box.fill(box.input_value() + " ")
        box.press("Enter")
        return "text edited"
    handle = control.locator(".noUi-handle").first
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    return "slider moved 5 steps right"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_in_jupyterlab(lab, source):
    url, context = lab
    page, log = open_chapter(context, url, source)
    try:
        kind = page.evaluate("() => window.jupyterapp.shell.currentWidget.node.className")
        assert "jp-NotebookPanel" in kind, (
            f"{source.name} opened as {kind!r}, not as a notebook: the jupyter-config override "
            "(defaultViewers markdown -> Jupytext Notebook) is not in effect")
        check_rendering(page, source)
        widget = first_widget_cell(source)
        if source.stem[:2] in RUN_FULLY:
            state = run_and_wait(page, "notebook:run-all-cells", 10**6, f"{source.name} run all")
        else:
            page.evaluate("(i) => { window.jupyterapp.shell.currentWidget.content"
                          ".activeCellIndex = i; }", widget)
            run_and_wait(page, "notebook:run-all-above", widget - 1, f"{source.name} up to "
                         f"cell {widget}")
            state = run_and_wait(page, "notebook:run-cell", widget, f"{source.name} widget")
        errors = errors_in(state)
        assert not errors, f"{source.name}: error output: {errors}"
        check_widget(page, source, state, widget)
        assert not log.external, f"{source.name}: requests outside 127.0.0.1: {log.external[:5]}"
        assert not log.page_errors, f"{source.name}: page errors: {log.page_errors[:3]}"
    finally:
        page.evaluate("""() => { const w = window.jupyterapp.shell.currentWidget;
                         return w && w.sessionContext && w.sessionContext.shutdown(); }""")
        page.close()
