"""The plain-CommonMark (Colab) edition of every chapter shows no raw MyST (issue 18).

``tools/plain_edition.py`` writes ``colab/NN_slug.ipynb`` from ``notebooks/NN_slug.md``. Every
markdown cell of every chapter's edition is rendered here with markdown-it's CommonMark preset
(plus tables, as Colab and Jupyter render them), and the visible text and code must hold no role,
directive, option line or target label; the answers must be folded in ``<details>``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import jupytext
import pytest
from markdown_it import MarkdownIt

from tools import plain_edition as pe

CHAPTERS = pe.chapters()
RAW_MYST = re.compile(r"\{(?:cite(?::\w+)?|ref|doc|numref|eq|math|term|abbr)\}|\{[a-z][\w:-]*\}`"
                      r"|```\{|:::\s*\{|^\s*:[a-z-]+:\s|^\s*\([\w-]+\)=\s*$", re.M)
DROPDOWN = re.compile(r"^(`{3,}|:{3,})\{admonition\}[^\n]*\n(?::[^\n]*\n)*?:class:[^\n]*dropdown",
                      re.M)
FIX = "run `make sync` (python tools/plain_edition.py) and commit colab/"


def commonmark_text(markdown: str) -> tuple[str, str]:
    """(html, visible text incl. code) of ``markdown`` rendered as CommonMark + tables."""
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    return rendered, text


def test_every_chapter_has_an_edition():
    assert CHAPTERS, "no notebooks/NN_*.md found"
    assert pe.main(["--check"]) == 0, f"colab/ does not match the sources: {FIX}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_edition_renders_without_raw_myst(source):
    edition = pe.EDITION / f"{source.stem}.ipynb"
    assert edition.exists(), f"{edition.name} missing: {FIX}"
    nb = jupytext.read(edition)
    src = "\n".join(c.source for c in jupytext.read(source).cells if c.cell_type == "markdown")
    dropdowns = len(DROPDOWN.findall(src))
    details = 0
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "markdown"):
        rendered, text = commonmark_text(cell.source)
        raw = RAW_MYST.search(text)
        assert not raw, f"{edition.name} markdown cell {i} shows raw MyST {raw.group(0)!r}"
        details += rendered.count("<details>")
        assert rendered.count("<details>") == rendered.count("</details>")
    assert details == dropdowns, (
        f"{edition.name}: {dropdowns} answer dropdowns in the source, {details} <details>")
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    if "{cite}" in src:
        assert nb.cells[-1].source.startswith("## References")


def convert(text: str, cited=None) -> str:
    return pe.convert_markdown(text, "test cell", cited)


def test_dropdown_answers_become_folded_details_with_their_code_intact():
    text = ("Exercises.\n\n````{admonition} Answers\n:class: dropdown\n1. $s = 13$, see\n"
            "   ```python\n   x = {'a': 1}\n   ```\n````\n")
    out = convert(text)
    assert "<details>\n<summary>Answers</summary>" in out and out.rstrip().endswith("</details>")
    assert "```python\n   x = {'a': 1}\n   ```" in out and "$s = 13$" in out
    rendered, visible = commonmark_text(out)
    assert "<details>" in rendered and not RAW_MYST.search(visible)


def test_plain_admonition_becomes_a_quote():
    out = convert("```{note}\nMind the gap.\n```")
    assert out.splitlines()[0] == "> **Note**" and "> Mind the gap." in out


def test_citations_become_author_year_links_and_are_collected():
    bib = pe.bibliography()
    cited = []
    out = convert("CLIP {cite}`radford2021clip` and the survey {cite:t}`zhang2024vlmsurvey`.",
                  cited)
    assert "([Radford et al., 2021](https://arxiv.org/abs/2103.00020))" in out
    assert "[Zhang et al. (2024)](https://doi.org/10.1109/TPAMI.2024.3369699)" in out
    assert cited == ["radford2021clip", "zhang2024vlmsurvey"]
    assert bib["zhang2024vlmsurvey"]["link"].startswith("https://doi.org/")
    two = convert("{cite}`radford2021clip,jia2021align`")
    assert two == ("([Radford et al., 2021](https://arxiv.org/abs/2103.00020); "
                   "[Jia et al., 2021](https://arxiv.org/abs/2102.05918))")
    suffixed = convert("{cite}`zhou2022coop` {cite}`zhou2022cocoop`")
    assert "Zhou et al., 2022c" in suffixed and "Zhou et al., 2022b" in suffixed


def test_inline_code_labels_comments_and_other_roles():
    out = convert("(sec-x)=\n% a comment\nSee {ref}`the loss <sec-x>`, {math}`\\tau`, "
                  "and `{cite}` in code.")
    assert out == "See the loss, $\\tau$, and `{cite}` in code."


@pytest.mark.parametrize("text, name", [("```{figure} a.png\n```", "figure"),
                                        ("{glossary}`x`", "glossary"),
                                        ("{cite}`nosuchkey2099`", "nosuchkey2099")])
def test_unknown_constructs_are_errors_naming_them(text, name):
    with pytest.raises(ValueError, match=name):
        convert(text)


def test_generated_edition_is_stable(tmp_path):
    source = CHAPTERS[0]
    assert pe.render(source) == pe.render(source)
    assert Path(pe.EDITION / f"{source.stem}.ipynb").read_text() == pe.render(source)


def test_bibtex_latex_becomes_plain_text(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text('@article{k,\n'
                   '  author = {Schr{\\"o}der, Jan and Ca{\\c{c}}a, Ana and Doe, J.},\n'
                   '  title = {Pre-training --- {CLIP} \\& co.},\n  year = {2020},\n'
                   '  eprint = {2001.00001}\n}\n')
    entry = pe.bibliography(bib)["k"]
    assert entry["who"] == "Schröder et al." and entry["year"] == "2020"
    assert entry["link"] == "https://arxiv.org/abs/2001.00001"
    assert "Jan Schröder, Ana Caça, J. Doe (2020). Pre-training — CLIP & co.." in entry["full"]


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_are_collapsed_colab_forms(source):
    """Every solution cell of the source starts with Colab's #@title form (shown collapsed, as
    the book folds it); no other cell does."""
    nb = pe.plain_notebook(source)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, f"{source.name}: no exercise solutions"
    for cell in nb.cells:
        folded = cell.cell_type == "code" and cell.source.startswith(pe.SOLUTION_TITLE)
        assert folded == (cell in solutions), f"{source.name}: {cell.source[:60]!r}"
        if folded:
            assert cell.metadata["cellView"] == "form"
            assert "answer_" in cell.source
