"""The published book in a real browser (issue 17): every page of the *built* HTML book, as a
reader without internet sees it.

Serves ``book/_build/html`` (or ``$VLM_COURSE_BOOK_HTML``) with Python's http.server on 127.0.0.1
and drives the system Chromium over every page (``tests/browser.py``). Per page it checks:

1. no request leaves 127.0.0.1 (MathJax, require.js, the widget manager and every font come from
   the book's own ``_static/``), no console error and no uncaught page error;
2. every equation (Sphinx's ``.math`` elements) is typeset by MathJax (an ``mjx-container``, no
   ``mjx-merror``) and no raw TeX (``\\(``, ``\\[``, ``$$``, ``\\frac``, ...) is left in the text
   outside code;
3. every image is loaded (``complete`` with a natural width) and none is shown downscaled by more
   than MAX_DOWNSCALE (natural width / rendered width): text drawn at 9 pt stays legible;
4. every embedded widget is rendered by the HTML manager and shows exactly one figure; every control
   of every widget is moved (a slider one step, a dropdown to another option) and the figure shown
   changes (its PNG bytes, hashed in the page); every chapter page has at least one widget;
5. no cell shows an error output, and no output shows a function repr, an object address or a
   ``<Figure size ...>`` repr;
6. every link to the book itself resolves: the page exists (HTTP 200) and its ``#fragment`` is an
   element id on that page.

A page that only redirects (jupyter-book's ``index.html``) is checked for an existing target. A
full-page screenshot of each page goes to ``book/_build/screenshots/`` and one line per page
(what was checked, with counts) to ``book/_build/screenshots/report.txt`` and the terminal. Not
collected by ``make unit`` (see ``tests/conftest.py``); ``make book-browser`` runs it after the
strict executed build. Skipped with an install hint without Chromium, a failure on CI.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import browser
import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("VLM_COURSE_BOOK_HTML", ROOT / "book" / "_build" / "html"))
SHOTS = Path(os.environ.get("VLM_COURSE_BOOK_SHOTS", ROOT / "book" / "_build" / "screenshots"))
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
PAGES = sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
               if not SKIP_DIRS & set(p.relative_to(HTML).parts))
CHAPTER = re.compile(r"(^|/)notebooks/\d\d_[^/]+\.html$")
MAX_DOWNSCALE = 1.5
RAW_TEX = re.compile(r"\\[(\[]|\$\$|\\(?:frac|mathcal|mathbf|mathbb|sum|log|exp|tau|cdot|top|"
                     r"le|ge|in|mathrm|left|right|begin|end)\b")
REPR = re.compile(r"<(?:function|bound method|class|module) |object at 0x[0-9a-f]+|<Figure size")
REPORT: list[str] = []
# jupyter-book's index.html only redirects to the first page: <meta http-equiv="Refresh" ...>
REFRESH = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.I)

PAGE_JS = """() => {
  const maths = Array.from(document.querySelectorAll('.math'));
  const untypeset = maths.filter(m => !m.querySelector('mjx-container'))
                         .map(m => m.textContent.trim().slice(0, 80));
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('pre, code, .highlight, mjx-container, script, style, textarea, '
                        + '.widget-subarea').forEach(e => e.remove());
  const outputs = Array.from(document.querySelectorAll('.cell_output, .output'))
                       .map(o => o.innerText);
  const tracebacks = document.querySelectorAll('.output.traceback, .output.error').length;
  const images = Array.from(document.querySelectorAll('img')).map(img => ({
      src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
      natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
      visible: !!img.offsetParent}));
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  return {maths: maths.length, untypeset, errors: document.querySelectorAll('mjx-merror').length,
          text: copy.textContent, outputs, tracebacks, images, ids, links,
          views: document.querySelectorAll(
              'script[type="application/vnd.jupyter.widget-view+json"]').length};
}"""

# The figure a widget shows: exactly one <img> (the selected child of the nested stacks) and the
# SHA-256 of its bytes.
SHOWN_JS = """async (i) => {
  const area = document.querySelectorAll('.widget-subarea')[i];
  const imgs = Array.from(area.querySelectorAll('img'));
  if (imgs.length !== 1 || !imgs[0].complete || !imgs[0].naturalWidth) return {count: imgs.length};
  const bytes = await (await fetch(imgs[0].src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return {count: 1, hash: Array.from(new Uint8Array(digest)).map(b => b.toString(16)).join('')};
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built book served on 127.0.0.1, and a Chromium context."""
    executable = browser.chromium_or_skip()
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built book at {HTML}: build it first (`make book-check`)")
    port = browser.free_port()
    log = tmp_path_factory.mktemp("book") / "http.log"
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
               "--directory", str(HTML)]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser.serve(command, f"http://127.0.0.1:{port}/index.html", log):
        with browser.chromium(executable) as context:
            context.set_default_timeout(60_000)
            yield f"http://127.0.0.1:{port}", context
    (SHOTS / "report.txt").write_text("\n".join(REPORT) + "\n")


_STATUS: dict[str, str | None] = {}


def fetch(url: str) -> str | None:
    """The text at a local URL, or None when it does not answer 200 (cached)."""
    if url not in _STATUS:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                _STATUS[url] = response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            _STATUS[url] = None
    return _STATUS[url]


def check_links(base: str, url: str, links: list[str], ids: list[str]) -> tuple[int, int]:
    """Every link into the book resolves; returns (internal, external) link counts."""
    internal = external = 0
    for href in links:
        parsed = urlparse(href)
        if parsed.scheme not in ("http", "https") or not href.startswith(base):
            external += parsed.scheme in ("http", "https")
            continue
        internal += 1
        target, fragment = urldefrag(href)
        if target == urldefrag(url)[0]:
            assert not fragment or fragment in ids, f"{url}: link to a missing anchor #{fragment}"
            continue
        text = fetch(target)
        assert text is not None, f"{url}: broken link to {target}"
        if fragment:
            assert re.search(rf'\bid="{re.escape(fragment)}"', text), (
                f"{url}: link to {target} whose anchor #{fragment} does not exist")
    return internal, external


def move(area, index: int) -> str:
    """Moves the index-th control of a rendered widget as a reader would; returns what it did."""
    control = area.locator(".widget-slider, .widget-hslider, .widget-dropdown").nth(index)
    control.scroll_into_view_if_needed()
    if "widget-dropdown" in (control.get_attribute("class") or ""):
        select = control.locator("select")
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        target = next(o for o in options if o != current)
        select.select_option(label=target)
        return f"dropdown {current!r} -> {target!r}"
    handle = control.locator(".noUi-handle").first
    handle.focus()
    before = control.locator(".widget-readout").inner_text()
    handle.press("ArrowRight")
    if control.locator(".widget-readout").inner_text() == before:  # at the right end
        handle.press("ArrowLeft")
    return f"slider {before!r} -> {control.locator('.widget-readout').inner_text()!r}"


def check_widgets(page, url: str, views: int) -> list[str]:
    """Every widget rendered with one figure; every control moved changes the figure."""
    page.wait_for_function(
        "(n) => document.querySelectorAll('.widget-subarea > .jupyter-widgets').length === n",
        arg=views, timeout=60_000)
    done = []
    for i in range(views):
        area = page.locator(".widget-subarea").nth(i)
        controls = area.locator(".widget-slider, .widget-hslider, .widget-dropdown").count()
        assert controls, f"{url}: widget {i} has no controls"
        for c in range(controls):
            before = page.evaluate(SHOWN_JS, i)
            assert before.get("hash"), f"{url}: widget {i} shows {before['count']} figures, not 1"
            what = move(area, c)
            deadline = time.monotonic() + 20
            after = page.evaluate(SHOWN_JS, i)
            while after.get("hash") in (None, before["hash"]) and time.monotonic() < deadline:
                time.sleep(0.2)
                after = page.evaluate(SHOWN_JS, i)
            assert after.get("hash") and after["hash"] != before["hash"], (
                f"{url}: widget {i}, control {c}: {what} did not change the figure shown")
            done.append(what)
    return done


@pytest.mark.parametrize("name", PAGES or ["(no built book)"])
def test_page(site, name):
    base, context = site
    url = f"{base}/{name}"
    redirect = REFRESH.search((HTML / name).read_text(errors="replace"))
    if redirect:  # a redirect page: its target must exist (the target is tested as a page)
        target = urllib.parse.urljoin(url, redirect.group(1))
        assert fetch(target) is not None, f"{url} redirects to {target}, which does not exist"
        REPORT.append(f"{name}: redirects to {redirect.group(1)} (exists)")
        print(REPORT[-1])
        return
    page = context.new_page()
    log = browser.PageLog(page)
    failed = []  # responses with an error status, named (the console says only "404")
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    try:
        page.goto(url, wait_until="load")
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]')"
                      ".forEach(i => { i.loading = 'eager'; })")
        if page.evaluate("() => document.querySelectorAll('.math').length"):
            page.wait_for_function("() => window.MathJax && MathJax.startup "
                                   "&& MathJax.startup.promise", timeout=60_000)
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)",
                               timeout=60_000)
        state = page.evaluate(PAGE_JS)
        moved = check_widgets(page, url, state["views"]) if state["views"] else []
        if CHAPTER.search(name):
            assert state["views"] >= 1, f"{url}: a chapter page without an interactive widget"
        state = {**state, **{k: v for k, v in page.evaluate(PAGE_JS).items() if k == "images"}}
        page.screenshot(path=str(SHOTS / (name.replace("/", "__")[:-5] + ".png")),
                        full_page=True)

        assert not log.external, f"{url}: requests outside 127.0.0.1: {log.external[:5]}"
        assert not failed, f"{url}: requests that failed: {failed[:5]}"
        assert not log.console_errors, f"{url}: console errors: {log.console_errors[:3]}"
        assert not log.page_errors, f"{url}: page errors: {log.page_errors[:3]}"
        assert not state["untypeset"], f"{url}: math not typeset: {state['untypeset'][:3]}"
        assert not state["errors"], f"{url}: {state['errors']} MathJax errors"
        raw = RAW_TEX.search(state["text"])
        assert not raw, (f"{url}: raw TeX {raw.group(0)!r} in the text: "
                         f"{state['text'][max(0, raw.start() - 80):raw.end() + 80]!r}")
        assert not state["tracebacks"], f"{url}: {state['tracebacks']} error outputs"
        for text in state["outputs"]:
            found = REPR.search(text)
            assert not found, f"{url}: an output shows a repr {found.group(0)!r}: {text[:200]!r}"
        broken = [i["src"][:80] for i in state["images"] if not i["loaded"]]
        assert not broken, f"{url}: images not loaded: {broken[:3]}"
        shrunk = [(i["src"][:60], round(i["natural"] / i["shown"], 2)) for i in state["images"]
                  if i["visible"] and i["shown"] > 0
                  and i["natural"] / i["shown"] > MAX_DOWNSCALE]
        assert not shrunk, (f"{url}: images shown downscaled by more than {MAX_DOWNSCALE}x "
                            f"(natural / rendered width): {shrunk}")
        internal, external = check_links(base, url, state["links"], state["ids"])
        worst = max((i["natural"] / i["shown"] for i in state["images"]
                     if i["visible"] and i["shown"] > 0), default=0)
        line = (f"{name}: 0 external requests, 0 console errors; {state['maths']} equations "
                f"typeset, no raw TeX; {len(state['images'])} images loaded (largest downscale "
                f"{worst:.2f}x); {state['views']} widgets, {len(moved)} controls moved, each "
                f"changed the figure; {internal} internal links resolve ({external} external "
                "links not followed); screenshot saved")
        REPORT.append(line)
        print(line)
    finally:
        page.close()
