"""The plain-CommonMark edition of the notebooks, for Colab and any Jupyter without MyST (issue 18).

The chapters are written in MyST (``notebooks/NN_slug.md``): dropdown admonitions hold the
answers, ``{cite}`` roles the citations, and the book renders both richly. Colab and a plain
Jupyter render markdown as CommonMark, where that syntax would show raw. This module writes, for
every chapter, ``colab/NN_slug.ipynb`` with the same cells and markdown that a CommonMark renderer
shows cleanly:

- a dropdown admonition becomes ``<details><summary>Title</summary> ... </details>`` (folded);
  another admonition (``note``, ``tip``, ...) a block quote with its title in bold;
- ``{cite}`key`` becomes "(Author et al., year)" linked to the DOI, URL or arXiv page from
  ``book/references.bib`` (``{cite:t}``: "Author et al. (year)") — the book's own author–year
  label, "2022a" and "2022b" included (``book/_ext/book_links.py``) — and the notebook ends with a
  "References" cell listing the works it cites;
- ``{math}`` becomes ``$...$``, ``{ref}``/``{doc}``/``{numref}``/``{eq}``/``{term}`` their text,
  ``(label)=`` target lines and ``%`` comment lines are dropped; ``{math}`` directives become
  ``$$`` blocks, ``{code-block}`` a fenced code block.

Anything else raises ValueError naming the chapter, so a new construct gets a plain form here
before it ships. Code cells are copied unchanged; the edition holds no outputs.

    python tools/plain_edition.py            # write colab/ (run by `make sync`)
    python tools/plain_edition.py --check    # exit 1, naming the files, when colab/ is stale
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EDITION = ROOT / "colab"
BIB = ROOT / "book" / "references.bib"

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[a-zA-Z][\w:-]*)\}\s*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[a-zA-Z][\w:-]*)\}`(?P<body>[^`]*)`")
ROLE_OR_CODE = re.compile(r"\{(?P<name>[a-zA-Z][\w:-]*)\}`(?P<body>[^`]*)`"
                          r"|(?P<code>`+)[^`]*(?P=code)")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
LABEL = re.compile(r"^\s*\([\w.:-]+\)=\s*$")
ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303",
           "c": "\u0327", "v": "\u030c", "=": "\u0304", "u": "\u0306", ".": "\u0307"}
VENUES = ("journal", "booktitle", "publisher", "howpublished")
ADMONITIONS = ("note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso")


# ---------------------------------------------------------------- citations (book/references.bib)

def book_labels(data) -> dict[str, str]:
    """key -> the author–year label the book gives each entry ("Zhou et al., 2022a"), from the
    book's own extension ``book/_ext/book_links.py``, so both editions cite alike."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from book_links import labels
    finally:
        sys.path.pop(0)
    return labels(data)


@lru_cache(maxsize=4)
def bibliography(path: Path = BIB) -> dict[str, dict]:
    """key -> {"short": "Radford et al., 2021" parts, "link", "full"} for every entry of ``path``.
    Raises ValueError when the file cannot be parsed."""
    from pybtex.database import parse_file

    def plain(latex: str) -> str:
        for accent, combining in ACCENTS.items():
            form = r"\{(\w)\}" if accent.isalpha() else r"\s*\{?(\w)\}?"  # \v{s}, \'e
            latex = re.sub(rf"\\{re.escape(accent)}{form}",
                           lambda m, c=combining: unicodedata.normalize("NFC", m[1] + c), latex)
        latex = latex.replace("---", "—").replace("--", "–").replace("\\&", "&").replace("~", " ")
        return re.sub(r"\s+", " ", latex.replace("{", "").replace("}", "")).strip()

    entries = {}
    data = parse_file(str(path), bib_format="bibtex")
    labels = book_labels(data)  # the book's own labels: "Zhou et al., 2022a"
    for key, entry in data.entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        who, year = labels[key].rsplit(", ", 1)
        fields = entry.fields
        link = None
        if fields.get("doi"):
            link = f"https://doi.org/{fields['doi']}"
        elif fields.get("url"):
            link = fields["url"]
        elif fields.get("eprint"):
            link = f"https://arxiv.org/abs/{fields['eprint']}"
        venue = next((plain(fields[f]) for f in VENUES if fields.get(f)), "")
        names = ", ".join(plain(" ".join(p.first_names + p.prelast_names + p.last_names))
                          for p in people)
        full = f"{names or who} ({year}). {plain(fields.get('title', ''))}."
        entries[key] = {"who": who, "year": year, "link": link,
                        "full": full + (f" *{venue}*." if venue else "")}
    return entries


def cite(keys: str, textual: bool, where: str, cited: list[str]) -> str:
    """The plain form of one {cite} role over comma-separated ``keys``."""
    bib = bibliography()
    parts = []
    for key in (k.strip() for k in keys.split(",")):
        if key not in bib:
            raise ValueError(f"{where}: {{cite}} key {key!r} is not in {BIB.relative_to(ROOT)}")
        if key not in cited:
            cited.append(key)
        e = bib[key]
        text = f"{e['who']} ({e['year']})" if textual else f"{e['who']}, {e['year']}"
        parts.append(f"[{text}]({e['link']})" if e["link"] else text)
    return "; ".join(parts) if textual else "(" + "; ".join(parts) + ")"


# ---------------------------------------------------------------- roles and directives

def convert_roles(line: str, where: str, cited: list[str]) -> str:
    def one(match: re.Match) -> str:
        name, body = match["name"], match["body"]
        if name in ("cite", "cite:p", "cite:ps", "cite:alp"):
            return cite(body, False, where, cited)
        if name in ("cite:t", "cite:ts", "cite:al"):
            return cite(body, True, where, cited)
        if name == "math":
            return f"${body}$"
        if name in ("ref", "doc", "numref", "eq", "term", "any", "download", "abbr"):
            return re.sub(r"\s*<[^>]*>$", "", body) or body
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{body}</{name}>"
        if name in ("code", "literal", "samp", "file", "command"):
            return f"`{body}`"
        raise ValueError(f"{where}: the role {{{name}}} has no plain form; add one in "
                         "tools/plain_edition.py")

    # Left to right, a role or an inline code span; code spans are copied unchanged.
    return ROLE_OR_CODE.sub(lambda m: one(m) if m["name"] else m[0], line)


def split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    options, i = {}, 0
    if body and body[0].strip() == "---":
        end = body.index("---", 1) if "---" in body[1:] else 0
        for line in body[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        i = end + 1
    while i < len(body) and OPTION.match(body[i].strip()):
        m = OPTION.match(body[i].strip())
        options[m["key"]] = m["value"]
        i += 1
    return options, body[i:]


def directive(name: str, arg: str, body: list[str], indent: str, where: str,
              cited: list[str]) -> list[str]:
    options, content = split_options(body)
    inner = convert_lines(content, where, cited)
    if name in ("admonition", "dropdown") or name in ADMONITIONS:
        title = arg.strip() if name in ("admonition", "dropdown") else name.capitalize()
        title = convert_roles(title or name.capitalize(), where, cited)
        if name == "dropdown" or "dropdown" in options.get("class", ""):
            return ([f"{indent}<details>", f"{indent}<summary>{title}</summary>", ""] + inner
                    + ["", f"{indent}</details>"])
        return [f"{indent}> **{title}**", f"{indent}>"] + [
            f"{indent}> {line[len(indent):]}" if line.strip() else f"{indent}>" for line in inner]
    if name == "math":
        return [f"{indent}$$"] + content + [f"{indent}$$"]
    if name in ("code-block", "code", "sourcecode"):
        return [f"{indent}```{arg.strip()}"] + content + [f"{indent}```"]
    if name in ("bibliography",):
        return []
    raise ValueError(f"{where}: the directive {{{name}}} has no plain form; add one in "
                     "tools/plain_edition.py")


def convert_lines(lines: list[str], where: str, cited: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            mark, indent = fence["fence"], fence["indent"]
            close = re.compile(rf"^\s*{re.escape(mark[0])}{{{len(mark)},}}\s*$")
            end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
            body = lines[i + 1:end]
            found = DIRECTIVE.match(fence["info"].strip())
            if found:
                out += directive(found["name"], found["arg"], body, indent, where, cited)
            elif mark[0] == ":":
                raise ValueError(f"{where}: a colon fence without a directive: {line!r}")
            else:
                out += [line] + body + ([lines[end]] if end < len(lines) else [])  # code: as is
            i = end + 1
            continue
        if LABEL.match(line) or re.match(r"^\s*%", line):
            i += 1
            continue
        out.append(convert_roles(line, where, cited))
        i += 1
    return out


def convert_markdown(text: str, where: str, cited: list[str] | None = None) -> str:
    """The CommonMark form of one MyST markdown cell. ``cited`` collects the citation keys.
    Raises ValueError (naming ``where``) for a role or directive without a plain form."""
    return "\n".join(convert_lines(text.split("\n"), where, [] if cited is None else cited))


# ---------------------------------------------------------------- notebooks

SOLUTION_TITLE = '#@title Solution (double-click to show) { display-mode: "form" }'


def plain_notebook(source: Path):
    """The plain edition of one chapter (an nbformat notebook, no outputs)."""
    import jupytext
    import nbformat

    nb = jupytext.read(source)
    cited: list[str] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cell.source = convert_markdown(cell.source, f"{source.name} cell {i}", cited)
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if "solution" in cell.metadata.get("tags", []):
                # Colab shows a cell that starts with a #@title form collapsed: the solution is
                # folded there as in the book, until the student double-clicks the title.
                cell.source = f"{SOLUTION_TITLE}\n{cell.source}"
                cell.metadata["cellView"] = "form"
        cell.metadata.pop("jupytext", None)
    if cited:
        bib = bibliography()
        refs = "\n".join(f"- {bib[k]['full']}" + (f" <{bib[k]['link']}>" if bib[k]["link"] else "")
                         for k in cited)
        nb.cells.append(nbformat.v4.new_markdown_cell("## References\n\n" + refs))
    nb.metadata.pop("jupytext", None)
    nb.metadata["vlm_course"] = {
        "edition": "plain CommonMark (Colab); generated from "
                   f"notebooks/{source.name} by tools/plain_edition.py: edit the source"}
    for j, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{j}"  # stable ids, so regenerating changes nothing
    return nb


def render(source: Path) -> str:
    import nbformat

    return nbformat.writes(plain_notebook(source), version=4) + "\n"


def chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale editions")
    args = parser.parse_args(argv)
    EDITION.mkdir(exist_ok=True)
    stale = []
    wanted = set()
    for source in chapters():
        target = EDITION / f"{source.stem}.ipynb"
        wanted.add(target.name)
        text = render(source)
        if not target.exists() or target.read_text() != text:
            stale.append(target.name)
            if not args.check:
                target.write_text(text)
    orphans = sorted(p.name for p in EDITION.glob("*.ipynb") if p.name not in wanted)
    if args.check:
        if stale or orphans:
            print(f"colab/ is stale: {stale + orphans}; run `make sync`", file=sys.stderr)
            return 1
        return 0
    for name in orphans:
        (EDITION / name).unlink()
    print(f"plain edition: {len(wanted)} notebooks in colab/ ({len(stale)} rewritten, "
          f"{len(orphans)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
