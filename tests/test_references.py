"""book/references.bib: every entry links to its paper, and one author–year label per entry is
shared by the book's list, its in-text citations and the Colab edition (issue 17, part 6)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pybtex = pytest.importorskip("pybtex", reason="pybtex comes with the dev extra")
from pybtex.database import parse_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIB = ROOT / "book" / "references.bib"
DATA = parse_file(str(BIB), bib_format="bibtex")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
ARXIV = re.compile(r"^\d{4}\.\d{4,5}$")


def book_links():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import book_links as module
    finally:
        sys.path.pop(0)
    return module


@pytest.mark.parametrize("key", sorted(DATA.entries), ids=str)
def test_entry_links_to_its_paper(key):
    fields = DATA.entries[key].fields
    doi, url, eprint = fields.get("doi"), fields.get("url"), fields.get("eprint")
    assert doi or url or eprint, (
        f"book/references.bib: {key} has no doi, url or eprint; add its DOI (doi = {{10...}}) "
        "or its arXiv id (eprint = {2103.00020}, archiveprefix = {arXiv})")
    if doi:
        assert DOI.match(doi), f"{key}: doi {doi!r} is not a bare DOI (10.NNNN/...; no https://)"
    if eprint:
        # The book and the Colab edition link an eprint to arxiv.org/abs/<id>.
        assert ARXIV.match(eprint), f"{key}: eprint {eprint!r} is not a new-style arXiv id"
        assert fields.get("archiveprefix", "arXiv").lower() == "arxiv", f"{key}: not arXiv"
    if url:
        assert url.startswith("https://"), f"{key}: url must be https, got {url!r}"


def test_author_year_labels_are_unique_and_disambiguated():
    labels = book_links().labels(DATA)
    assert set(labels) == set(DATA.entries)
    assert len(set(labels.values())) == len(labels), "two entries share a label"
    assert labels["radford2021clip"] == "Radford et al., 2021"
    assert labels["dalal2005hog"] == "Dalal and Triggs, 2005"
    assert labels["oord2018cpc"] == "van den Oord et al., 2018"
    zhou = sorted(v for k, v in labels.items() if v.startswith("Zhou et al., 2022"))
    assert zhou == ["Zhou et al., 2022a", "Zhou et al., 2022b", "Zhou et al., 2022c"]


def test_colab_edition_cites_with_the_book_labels():
    from tools import plain_edition as pe

    labels = book_links().labels(DATA)
    bib = pe.bibliography()
    for key, label in labels.items():
        assert f"{bib[key]['who']}, {bib[key]['year']}" == label
        assert bib[key]["link"], f"{key} has no link in the Colab edition"


def test_reference_list_uses_the_author_year_style():
    page = (ROOT / "book" / "references.md").read_text()
    assert ":style: author_year" in page
    config = (ROOT / "book" / "_config.yml").read_text()
    assert re.search(r"bibtex_reference_style:\s*course_author_year", config)
    assert re.search(r"book_links:\s*_ext", config)
