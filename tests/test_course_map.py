"""The chapter list in vlm_course.chapters agrees with the notebooks, the book's toc and the
README."""

import re
from pathlib import Path

import pytest

from vlm_course.chapters import CHAPTERS, available, markdown_table

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
READY = [ch for ch in CHAPTERS if available(ch)]


def test_chapters_are_numbered_in_order_and_unique():
    numbers = [ch.number for ch in CHAPTERS]
    assert numbers == [f"{i:02d}" for i in range(len(CHAPTERS))]
    assert len({ch.slug for ch in CHAPTERS}) == len(CHAPTERS)


def test_every_notebook_is_a_known_chapter():
    known = {ch.stem for ch in CHAPTERS}
    unknown = [s for s in NOTEBOOKS if s not in known]
    assert not unknown, f"{unknown}: add these chapters to vlm_course/chapters.py"


@pytest.mark.parametrize("chapter", READY, ids=lambda ch: ch.stem)
def test_ready_chapter_is_in_the_book(chapter):
    toc = (ROOT / "book" / "_toc.yml").read_text()
    assert f"file: notebooks/{chapter.stem}" in toc, (
        f"add notebooks/{chapter.stem} to book/_toc.yml")


@pytest.mark.parametrize("chapter", READY, ids=lambda ch: ch.stem)
def test_ready_chapter_is_in_the_readme_table(chapter):
    readme = (ROOT / "README.md").read_text()
    row = re.search(rf"^\|\s*{chapter.number}\s*\|.*notebooks/{chapter.stem}\.ipynb", readme, re.M)
    assert row, f"add a row for notebooks/{chapter.stem}.ipynb to the chapter table in README.md"


def test_book_lists_no_missing_notebook():
    toc = (ROOT / "book" / "_toc.yml").read_text()
    for stem in re.findall(r"file:\s*notebooks/(\S+)", toc):
        assert (ROOT / "notebooks" / f"{stem}.ipynb").exists(), f"toc names missing notebook {stem}"


def test_markdown_table_marks_status(tmp_path):
    (tmp_path / "00_start_here.ipynb").write_text("{}")
    table = markdown_table(tmp_path).splitlines()
    assert len(table) == 2 + len(CHAPTERS)
    assert table[2].startswith("| 00 | Start here | ready |")
    assert table[3].startswith("| 01 | Paradigms of visual recognition | planned |")


def first_paragraph_after_title(text: str) -> tuple[str, str]:
    """(the '# ' title line, the first paragraph after it) of a chapter's MyST source."""
    lines = text.split("\n")
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    paragraph: list[str] = []
    for line in lines[title + 1:]:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    return lines[title], " ".join(paragraph)


@pytest.mark.parametrize("chapter", READY, ids=lambda ch: ch.stem)
def test_chapter_opens_with_its_survey_section(chapter):
    """Right under '# NN Title', as its own paragraph: CHAPTERS[n].section_line."""
    title, first = first_paragraph_after_title(
        (ROOT / "notebooks" / f"{chapter.stem}.md").read_text())
    assert title == f"# {chapter.number} {chapter.title}", (
        f"notebooks/{chapter.stem}.md: the title {title!r} differs from the course map's "
        f"'# {chapter.number} {chapter.title}' (vlm_course/chapters.py)")
    assert first == chapter.section_line, (
        f"notebooks/{chapter.stem}.md: the paragraph under the title must be "
        f"{chapter.section_line!r}, got {first[:80]!r}; run `make sync` "
        "(python tools/course_links.py writes it)")


def test_first_paragraph_helper_reads_the_paragraph_under_the_title():
    text = "---\nfront: matter\n---\n\n# 04 Title\n\n*Survey § 3 — X*\n\nIntro text\nmore\n"
    assert first_paragraph_after_title(text) == ("# 04 Title", "*Survey § 3 — X*")
    assert first_paragraph_after_title("# 01 T\nIntro\nmore\n\nnext")[1] == "Intro more"


@pytest.mark.parametrize("chapter", READY, ids=lambda ch: ch.stem)
def test_course_maps_show_the_survey_section(chapter):
    readme = (ROOT / "README.md").read_text()
    row = re.search(rf"^\|\s*{chapter.number}\s*\|[^|]*\|\s*§ {re.escape(chapter.section)} "
                    rf"{re.escape(chapter.section_title)}\s*\|", readme, re.M)
    assert row, (f"README.md's chapter table: the row of {chapter.number} needs the column "
                 f"'§ {chapter.section} {chapter.section_title}' after the chapter's title")
    table = markdown_table()
    assert "survey §" in table.splitlines()[0]
    assert f"| § {chapter.section} {chapter.section_title} |" in table
