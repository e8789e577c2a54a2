"""The book's links and citation labels (issue 17, parts 4 and 6); a local Sphinx extension
that ``book/_config.yml`` loads (``sphinx: local_extensions``).

- **Author–year everywhere.** The pybtex formatting style ``author_year`` (use it as
  ``:style: author_year`` in ``{bibliography}``) sorts the reference list by author, year and
  title and labels each entry "Radford et al., 2021"; the referencing style
  ``course_author_year`` (``bibtex_reference_style``) makes the chapters' ``{cite}`` roles show
  the same text, "(Radford et al., 2021)". Works by the same first authors in the same year get
  "2022a", "2022b" in the list and in the text (and in the Colab edition, which calls
  :func:`labels`).
- **Colab opens the plain edition.** sphinx-book-theme's Colab button points at the page's
  source notebook (``notebooks/NN_slug.ipynb``, written in MyST, which Colab shows raw); this
  rewrites it to ``colab/NN_slug.ipynb``, the CommonMark edition ``tools/plain_edition.py``
  writes. The repository, branch and Colab address come from the theme options, that is from
  ``book/_config.yml``'s ``repository:`` and ``launch_buttons:`` blocks.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from string import ascii_lowercase

from pybtex.plugin import find_plugin, register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinxcontrib.bibtex.plugin import register_plugin as register_reference_style
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.template import join, join2, node, post_text, pre_text, reference

COLAB_EDITION = "colab"
ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303",
           "c": "\u0327", "v": "\u030c", "=": "\u0304", "u": "\u0306", ".": "\u0307"}


def _plain(text: str) -> str:
    """A bib name without TeX braces and accent macros (``Doll{\\'a}r`` -> Dollár)."""
    for accent, combining in ACCENTS.items():
        form = r"\{(\w)\}" if accent.isalpha() else r"\s*\{?(\w)\}?"  # \v{s}, \'e
        text = re.sub(rf"\\{re.escape(accent)}{form}",
                      lambda m, c=combining: unicodedata.normalize("NFC", m[1] + c), text)
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def author_year(entry) -> str:
    """"Surname, year", "A and B, year" or "A et al., year" for one pybtex entry."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(p.prelast_names + p.last_names)) for p in people]
    if not names:
        who = _plain(entry.fields.get("organization", entry.fields.get("title", entry.key)))
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def year_suffixes(entries) -> dict[str, str]:
    """key -> "" or "a", "b", ... for entries whose author–year text collides, in list order."""
    labels = {entry.key: author_year(entry) for entry in entries}
    count, seen = Counter(labels.values()), Counter()
    out = {}
    for entry in entries:
        label = labels[entry.key]
        out[entry.key] = ascii_lowercase[seen[label]] if count[label] > 1 else ""
        seen[label] += 1
    return out


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Radford et al., 2021" (with "a", "b" when two entries would share one)."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        suffix = year_suffixes(entries)
        for entry in entries:
            yield author_year(entry) + suffix[entry.key]


class AuthorYearStyle(UnsrtStyle):
    """unsrt's entry format, author–year labels, sorted by author, year and title."""

    default_label_style = "author_year"
    default_sorting_style = "author_year_title"


def labels(bib_data) -> dict[str, str]:
    """key -> author–year label for every entry of a pybtex ``BibliographyData``, in the order
    and with the suffixes the book's reference list uses (the tools' plain edition calls this)."""
    entries = find_plugin("pybtex.style.sorting", "author_year_title")().sort(
        list(bib_data.entries.values()))
    return {e.key: label for e, label in zip(entries, AuthorYearLabels().format_labels(entries),
                                              strict=True)}


@node
def label_year(children, data) -> Text:
    """The year part of the entry's label ("2022a"), so the text matches the reference list."""
    assert not children
    return Text(data["formatted_entry"].label.rsplit(", ", 1)[-1])


class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str):
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[join(sep=self.author_year_sep)[
                self.person.author_or_editor_or_title(full="s" in role_name), label_year]],
            post_text,
        ]


class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str):
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[self.bracket.left,
                 join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                     pre_text, reference[label_year], post_text],
                 self.bracket.right],
        ]


@dataclass
class CourseAuthorYear(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's author_year citations with the list's year suffixes ("2022a")."""

    def __post_init__(self):
        super().__post_init__()
        first, second = self.styles[0], self.styles[1]
        self.styles[0] = _Parenthetical(
            bracket=first.bracket, person=first.person, author_year_sep=first.author_year_sep,
            pre_text_sep=first.pre_text_sep, post_text_sep=first.post_text_sep)
        self.styles[1] = _Textual(
            bracket=second.bracket, person=second.person,
            text_reference_sep=second.text_reference_sep, pre_text_sep=second.pre_text_sep,
            post_text_sep=second.post_text_sep)
        self.role_style.update((role, style) for style in self.styles[:2]
                               for role in style.role_names())


register_plugin("pybtex.style.labels", "author_year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
register_reference_style("sphinxcontrib.bibtex.style.referencing", "course_author_year",
                         CourseAuthorYear)


def colab_edition(app, pagename, templatename, context, doctree) -> None:
    """Point the Colab launch button of a chapter page at ``colab/NN_slug.ipynb``."""
    if not pagename.startswith("notebooks/"):
        return
    stem = pagename.split("/")[-1]
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                button["url"] = re.sub(r"/blob/([^/]+)/.*$", rf"/blob/\1/{COLAB_EDITION}/"
                                       rf"{stem}.ipynb", button["url"])


def setup(app):
    # sphinx-book-theme adds its launch buttons at priority 501; rewrite them after that.
    app.connect("html-page-context", colab_edition, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
