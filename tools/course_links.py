"""The one repository URL, and the top of every chapter (issue 17, parts 4 and 6).

``book/_config.yml``'s ``repository:`` block (``url``, ``branch``) is the only place that names the
course's repository: an instructor publishing a fork changes that line. The book reads it directly
(the Binder, Colab and repository buttons); this tool writes everything else that needs it, and
the standard top of every chapter:

- every ``notebooks/NN_slug.md`` opens with ``# NN Title``, then the survey section it teaches
  (``vlm_course.chapters.CHAPTERS[n].section_line``) as its own paragraph, then the **install
  cell**: a code cell tagged ``remove-cell`` (the book hides it; the .ipynb and the Colab edition
  keep it) that does nothing where ``vlm_course`` imports and otherwise clones the repository
  (code, the shipped checkpoints in ``data/``, the benchmark results the chapters read) and
  installs it editable, so a notebook opened alone in Colab runs;
- the README's and chapter 00's "how to open the notebooks" links (between ``links:begin`` and
  ``links:end`` marker comments);
- ``pyproject.toml``'s ``[project.urls]``.

    python tools/course_links.py            # write them (run by `make sync`, before jupytext)
    python tools/course_links.py --check    # exit 1, naming the files, when one is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "book" / "_config.yml"
NOTEBOOKS = ROOT / "notebooks"
FIX = "run `make sync` (python tools/course_links.py)"

#: The first line of the install cell: how the tool recognises it in a chapter.
INSTALL_MARK = "# Setup for Colab (or any Jupyter without the course):"
SECTION_LINE = re.compile(r"^\*Survey § .*\*$")
CELL_START = "```{code-cell} ipython3"


def repository(config: Path = CONFIG) -> tuple[str, str]:
    """(url, branch) from ``config``'s ``repository:`` block. Raises ValueError when the block or
    its ``url`` is missing, or the URL is not an https GitHub repository (Binder and Colab need
    one)."""
    import yaml

    block = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    url, branch = str(block.get("url", "")).rstrip("/"), str(block.get("branch", "main"))
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{config.name}: repository.url must be https://github.com/OWNER/REPO "
                         f"(Binder and Colab open GitHub repositories), got {url!r}")
    return url, branch


def colab_url(url: str, branch: str, stem: str) -> str:
    """Colab's address of the plain edition ``colab/{stem}.ipynb`` on GitHub."""
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}" \
           f"/blob/{branch}/colab/{stem}.ipynb"


def binder_url(url: str, branch: str, path: str = "notebooks/00_start_here.md") -> str:
    """mybinder.org's address of the repository, opening ``path`` in JupyterLab."""
    return (f"https://mybinder.org/v2/gh/{url.removeprefix('https://github.com/')}/{branch}"
            f"?urlpath=lab/tree/{path}")


def install_cell(url: str, branch: str) -> str:
    """The MyST source of the install cell (the first code cell of every chapter)."""
    return f"""{CELL_START}
:tags: [remove-cell]

{INSTALL_MARK} fetch the course's repository (code, the
# shipped checkpoints in data/, the benchmark results) and install it. Where vlm_course already
# imports (make lab, Binder, the book) it does nothing. Written by tools/course_links.py.
import importlib.util
import sys

if importlib.util.find_spec("vlm_course") is None:
    import subprocess
    from pathlib import Path

    course = Path("vlm-course").resolve()
    if not course.exists():
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "{url}", str(course)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(course)],
                   check=True)
    sys.path.insert(0, str(course))  # the running kernel imports the fresh install at once
```"""


# ---------------------------------------------------------------- chapters

def _cell_end(lines: list[str], start: int) -> int:
    """Index of the closing fence of the code cell opened at ``start``."""
    return next(j for j in range(start + 1, len(lines)) if lines[j].strip() == "```")


def chapter_top(text: str, section_line: str, cell: str, where: str) -> str:
    """``text`` (a chapter's MyST source) with the § line right under its ``# `` title and the
    install cell right after it; any earlier install cell is removed. Raises ValueError when the
    chapter has no ``# `` title."""
    lines = text.split("\n")
    # Drop an existing install cell, wherever it is, with the blank line after it.
    for i, line in enumerate(lines):
        if line.strip() == CELL_START and any(
                INSTALL_MARK in x for x in lines[i + 1:_cell_end(lines, i)]):
            end = _cell_end(lines, i)
            del lines[i:end + 1 + (end + 1 < len(lines) and not lines[end + 1].strip())]
            break
    title = next((i for i, x in enumerate(lines) if x.startswith("# ")), None)
    if title is None:
        raise ValueError(f"{where}: no '# NN Title' heading")
    j = title + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j < len(lines) and SECTION_LINE.match(lines[j].strip()):
        del lines[j]  # the old § line: written afresh below
    rest = lines[title + 1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    top = ["", section_line, "", *cell.split("\n"), ""]
    return "\n".join(lines[:title + 1] + top + rest)


def expected_chapters() -> dict[Path, str]:
    """Every chapter source -> its text with the standard top."""
    sys.path.insert(0, str(ROOT))
    from vlm_course.chapters import CHAPTERS

    by_stem = {ch.stem: ch for ch in CHAPTERS}
    url, branch = repository()
    cell = install_cell(url, branch)
    out = {}
    for source in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md")):
        chapter = by_stem.get(source.stem)
        if chapter is None:
            raise ValueError(f"{source.name} is not in vlm_course/chapters.py: add its entry")
        out[source] = chapter_top(source.read_text(), chapter.section_line, cell, source.name)
    return out


# ---------------------------------------------------------------- README, chapter 00, pyproject

def replace_block(text: str, begin: str, end: str, body: str, where: str) -> str:
    """``text`` with the lines between the marker lines ``begin`` and ``end`` replaced by
    ``body``. Raises ValueError when the markers are missing."""
    pattern = re.compile(rf"(^{re.escape(begin)}[^\n]*\n)(.*?)(^{re.escape(end)}[^\n]*$)",
                         re.M | re.S)
    if not pattern.search(text):
        raise ValueError(f"{where}: the marker lines {begin!r} ... {end!r} are missing")
    return pattern.sub(lambda m: m[1] + body + m[3], text, count=1)


def opening_links(url: str, branch: str) -> str:
    """The Binder and Colab bullets (README and chapter 00)."""
    return f"""- **Binder:** [open the course on mybinder.org]({binder_url(url, branch)})
  (or a chapter page's Binder button in the book): `environment.yml` builds the environment and
  installs the package; `postBuild` makes the `.md` chapters open as notebooks there too.
- **Colab:** open a chapter's plain-Markdown edition `colab/NN_slug.ipynb`, e.g.
  [chapter 00 in Colab]({colab_url(url, branch, "00_start_here")})
  (or a chapter page's Colab button in the book). Its first cell installs the course when it is
  missing: it clones {url} (branch `{branch}`), which brings the
  shipped checkpoints in `data/`, and runs `pip install -e` on the clone (pip fetches what
  Colab lacks of the dependencies). Colab renders this edition without MyST: solutions in a
  collapsed form, citations as author and year.
"""


def expected_readme(url: str, branch: str) -> str:
    path = ROOT / "README.md"
    return replace_block(path.read_text(), "<!-- links:begin", "<!-- links:end",
                         opening_links(url, branch), "README.md")


def expected_start_here(url: str, branch: str) -> str:
    path = NOTEBOOKS / "00_start_here.md"
    text = expected_chapters()[path]
    return replace_block(text, "% links:begin", "% links:end", opening_links(url, branch),
                         path.name)


def expected_pyproject(url: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    block = (f'[project.urls]\n# Written by tools/course_links.py from book/_config.yml\n'
             f'Repository = "{url}"\nIssues = "{url}/issues"\n')
    if "[project.urls]" in text:
        return re.sub(r"^\[project\.urls\]\n(?:[^\[\n][^\n]*\n)*\n*", block + "\n", text,
                      count=1, flags=re.M)
    return text.replace("[project.optional-dependencies]",
                        block + "\n[project.optional-dependencies]", 1)


def expected() -> dict[Path, str]:
    """Every file this tool writes -> its expected text."""
    url, branch = repository()
    out = expected_chapters()
    out[NOTEBOOKS / "00_start_here.md"] = expected_start_here(url, branch)
    out[ROOT / "README.md"] = expected_readme(url, branch)
    out[ROOT / "pyproject.toml"] = expected_pyproject(url)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected().items() if path.read_text() != text]
    if args.check:
        if stale:
            names = [str(p.relative_to(ROOT)) for p in stale]
            print(f"stale: {names}; {FIX}", file=sys.stderr)
            return 1
        return 0
    for path, text in expected().items():
        if path in stale:
            path.write_text(text)
    print(f"course links: {len(stale)} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
