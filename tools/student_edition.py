"""The student edition: every chapter with its exercise solutions replaced by stubs (issue 17).

In the full edition (``notebooks/NN_slug.ipynb``) an exercise is a statement, a code cell tagged
``solution`` that assigns one or more ``answer_*`` names, and a check cell whose last statement
calls a ``check_*`` function from ``vlm_course.exercises.chNN``. This module writes
``student/NN_slug.ipynb`` with

- each solution cell's source replaced by one stub line per ``answer_*`` name, in the order the
  solution first assigns them (``answer_2 = ...  # your answer``), its ``solution``/``hide-cell``
  tags replaced by ``exercise-stub``;
- the check cell after it tagged ``exercise-check`` (its book-only ``hide-output`` dropped, so the
  verdict shows);
- every other cell kept as it is (source, id, metadata, tags), and no outputs anywhere.

A check on ``...`` reports "not answered yet" (unless ``VLM_COURSE_CHECKS=strict``), so the student
edition runs under nbval from top to bottom (``make student-check``). The rules below are errors,
raised as ValueError naming the chapter and the cell number (0-based, as nbval counts):

- a solution cell that is not code, or that assigns no ``answer_*`` name at top level;
- a solution cell not followed by a code cell that ends with a ``check_*(...)`` call;
- a later cell that uses a name only a solution cell assigns (other than ``answer_*``): it would
  fail in the student edition.

    python tools/student_edition.py                 # every chapter -> student/
    python tools/student_edition.py 03_datasets     # one chapter
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EDITION = ROOT / "student"
SOLUTION = "solution"
# Tags that fold answers in the book: a student's own stub and verdict are shown unfolded.
HIDE = ("hide-input", "hide-cell", "hide-output")
STUB_TAG, CHECK_TAG = "exercise-stub", "exercise-check"
ANSWER = re.compile(r"^answer_\w+$")
MAGIC = re.compile(r"^\s*[%!]")


def chapters() -> list[str]:
    """The stems ``NN_slug`` of every chapter in notebooks/ (from its .ipynb or .md file)."""
    stems = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    stems |= {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.md")}
    return sorted(stems)


def read_chapter(stem: str) -> nbformat.NotebookNode:
    """The full edition of chapter ``stem``: notebooks/stem.ipynb, or stem.md through jupytext.
    Raises ValueError when neither exists."""
    ipynb, md = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.md"
    if ipynb.exists():
        return nbformat.read(ipynb, as_version=4)
    if md.exists():
        import jupytext

        return jupytext.read(md)
    raise ValueError(f"chapter: expected notebooks/{stem}.ipynb or .md, found neither")


def _tree(source: str, where: str) -> ast.Module:
    """The code cell's syntax tree, IPython magics and shell lines blanked out."""
    code = "\n".join("" if MAGIC.match(line) else line for line in source.splitlines())
    try:
        return ast.parse(code)
    except SyntaxError as err:
        raise ValueError(f"{where}: not valid Python ({err.msg}, line {err.lineno})") from None


def _targets(node: ast.AST) -> list[str]:
    """Names bound by an assignment target (tuples and lists unpacked)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [name for elt in node.elts for name in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []


def answer_names(source: str, where: str) -> list[str]:
    """The ``answer_*`` names a solution cell assigns at top level, in order of first assignment.
    Raises ValueError (naming ``where``) when there is none."""
    names: list[str] = []
    for stmt in _tree(source, where).body:
        if isinstance(stmt, ast.Assign):
            bound = [n for t in stmt.targets for n in _targets(t)]
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            bound = _targets(stmt.target)
        else:
            continue
        names += [n for n in bound if ANSWER.match(n) and n not in names]
    if not names:
        raise ValueError(f"{where}: a solution cell must assign an `answer_*` name at top level "
                         "(e.g. `answer_2 = ...`), found none")
    return names


def _stored_and_loaded(source: str, where: str) -> tuple[set[str], set[str]]:
    """(names the cell binds anywhere, names it reads anywhere)."""
    stored, loaded = set(), set()
    for node in ast.walk(_tree(source, where)):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return stored, loaded


def _ends_with_check(source: str, where: str) -> bool:
    body = _tree(source, where).body
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
        return False
    func = body[-1].value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name.startswith("check_")


def student_edition(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with every solution cell stubbed and its check cell tagged (see module
    docstring). ``chapter`` names the notebook in error messages. Raises ValueError."""
    out = copy.deepcopy(nb)
    solution_only: dict[str, int] = {}   # name -> cell index of the solution that binds it
    defined: set[str] = set()            # names bound by cells that stay in the student edition
    pending = None                       # index of a solution cell still waiting for its check
    for i, cell in enumerate(out.cells):
        where = f"{chapter}, cell {i}"
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if SOLUTION in tags:
            if cell.cell_type != "code":
                raise ValueError(f"{where}: a `solution` tag on a {cell.cell_type} cell; "
                                 "only code cells can be solutions")
            if pending is not None:
                raise ValueError(f"{chapter}, cell {pending}: solution cell not followed by a "
                                 "check cell (a code cell ending with `check_*(...)`)")
            names = answer_names(cell.source, where)
            stored, _ = _stored_and_loaded(cell.source, where)
            solution_only.update({n: i for n in stored
                                  if not ANSWER.match(n) and n not in defined})
            cell.source = "\n".join(f"{n} = ...  # your answer" for n in names)
            kept = [t for t in tags if t != SOLUTION and t not in HIDE]
            cell.metadata["tags"] = kept + [STUB_TAG]
            pending = i
            continue
        if cell.cell_type != "code":
            continue
        stored, loaded = _stored_and_loaded(cell.source, where)
        used = sorted(n for n in loaded - stored if n in solution_only)
        if used:
            raise ValueError(f"{where} uses `{used[0]}`, which only the solution in cell "
                             f"{solution_only[used[0]]} assigns: the student edition would fail "
                             "here (later cells may use only `answer_*` names of a solution)")
        defined |= stored
        for n in stored:
            solution_only.pop(n, None)
        if pending is not None:
            if not _ends_with_check(cell.source, where):
                raise ValueError(f"{chapter}, cell {pending}: solution cell not followed by a "
                                 "check cell (a code cell ending with `check_*(...)`)")
            cell.metadata["tags"] = [t for t in tags if t not in HIDE] + [CHECK_TAG]
            pending = None
    if pending is not None:
        raise ValueError(f"{chapter}, cell {pending}: solution cell not followed by a check cell "
                         "(a code cell ending with `check_*(...)`)")
    return out


def write(stems: list[str], out_dir: Path = EDITION) -> list[Path]:
    """Write ``out_dir/stem.ipynb`` for every chapter stem; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in stems:
        path = out_dir / f"{stem}.ipynb"
        nbformat.write(student_edition(read_chapter(stem), stem), path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="NN_slug stems (default: every chapter)")
    parser.add_argument("--out", type=Path, default=EDITION, help="output folder (student/)")
    args = parser.parse_args(argv)
    known = chapters()
    unknown = [s for s in args.chapters if s not in known]
    if unknown:
        parser.error(f"unknown chapter(s) {unknown}; expected some of {known}")
    try:
        paths = write(args.chapters or known, args.out)
    except ValueError as err:
        print(f"student edition: {err}", file=sys.stderr)
        return 1
    for p in paths:
        print(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
