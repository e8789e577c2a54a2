"""Real-browser machinery for the tests that look at the course as a person does (issues 17, 18).

The browser is the system Chromium (Debian/Ubuntu package ``chromium``; Playwright's own browser
download is not used), driven by Playwright's Python client. Pieces:

- :func:`chromium_or_skip` finds the executable; where it is absent the test is skipped with a
  message saying how to install it, except on CI (``CI`` set and not ``false``/``0``), where a
  missing browser is a failure;
- :func:`chromium` is a context manager yielding a Playwright ``Browser`` (headless, no sandbox so
  it also runs as root);
- :func:`free_port` and :func:`serve` start a local server process bound to 127.0.0.1, wait until
  it answers and stop it (and its children) afterwards;
- :class:`PageLog` records a page's console errors, page errors and requests outside 127.0.0.1.

Nothing here talks to any host but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

INSTALL_HINT = ("install Chromium to run the browser tests: `apt-get install chromium` (Debian), "
                "`apt-get install chromium-browser` (Ubuntu) or set VLM_COURSE_CHROMIUM to a "
                "Chromium/Chrome executable; then `pip install playwright` (in the dev extra)")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_chromium() -> str | None:
    """The Chromium executable: $VLM_COURSE_CHROMIUM, else the first of CANDIDATES on PATH."""
    explicit = os.environ.get("VLM_COURSE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_or_skip() -> str:
    """The Chromium path; skips the calling test with INSTALL_HINT where there is none (fails on
    CI, where the browser tests are required), and likewise when Playwright is missing."""
    path = find_chromium()
    problem = None if path else "no Chromium found"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed"
    if problem:
        if on_ci():
            pytest.fail(f"{problem}; the browser tests are required on CI: {INSTALL_HINT}")
        pytest.skip(f"{problem}: {INSTALL_HINT}")
    return path


@contextlib.contextmanager
def chromium(executable: str, viewport: tuple[int, int] = (1280, 900)):
    """Yields a new headless browser context (Playwright ``BrowserContext``) of the system
    Chromium at ``executable``; closes everything on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield context
        finally:
            context.close()
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Polls ``url`` until it answers (any HTTP status) or raises TimeoutError / RuntimeError
    when the ``process`` serving it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before {url} "
                               "answered")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def serve(command: Sequence[str], url: str, log: Path, env: dict | None = None,
          cwd: Path | None = None, timeout: float = 120.0) -> Iterator[subprocess.Popen]:
    """Runs ``command`` (a server bound to 127.0.0.1) with stdout/stderr in ``log``, waits until
    ``url`` answers, yields the process and stops its whole process group afterwards."""
    # SIGTERM (e.g. from `timeout`) unwinds like an exception, so the server is always stopped.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with open(log, "w") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=cwd, start_new_session=True)
        try:
            try:
                wait_for_url(url, timeout, process)
            except (TimeoutError, RuntimeError) as err:
                raise RuntimeError(f"{err}; server log:\n{log.read_text()[-3000:]}") from err
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class PageLog:
    """Collects a Playwright page's console errors, uncaught page errors and every request to a
    host other than 127.0.0.1/localhost (``external``)."""

    LOCAL = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost",
             "data:", "blob:", "about:")

    def __init__(self, page) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.external: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, request) -> None:
        if not request.url.startswith(self.LOCAL):
            self.external.append(request.url)
