"""Every notebooks/NN_slug.md is paired with an NN_slug.ipynb that holds the same cells and no
outputs.

The .md (MyST, jupytext) is the source of truth; the .ipynb is what students open and what nbval and
the book execute. When this test fails, run `make sync` (jupytext --sync) and commit both files.
"""

import json
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
PAIRED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
FIX = "run `make sync` (jupytext --sync notebooks/*.md) and commit both files"


def cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_there_are_notebooks():
    assert SOURCES, f"no chapter sources found in {NOTEBOOKS}"


def test_every_ipynb_has_its_md_source():
    orphans = [p.name for p in PAIRED if not p.with_suffix(".md").exists()]
    assert not orphans, (
        f"{orphans}: .ipynb without a .md source; create it with `jupytext --to md:myst`")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_pair_is_in_sync(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{source.name} has no paired {ipynb.name}: {FIX}"
    md_cells = cells(jupytext.read(source))
    nb_cells = cells(jupytext.read(ipynb))
    for i, (a, b) in enumerate(zip(md_cells, nb_cells, strict=False)):
        assert a == b, f"{source.name} and {ipynb.name} differ at cell {i} ({a[0]}): {FIX}"
    assert len(md_cells) == len(nb_cells), (
        f"{source.name} has {len(md_cells)} cells, {ipynb.name} has {len(nb_cells)}: {FIX}")


@pytest.mark.parametrize("ipynb", PAIRED, ids=lambda p: p.name)
def test_ipynb_is_committed_without_outputs(ipynb):
    raw = json.loads(ipynb.read_text())
    dirty = [i for i, c in enumerate(raw["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{ipynb.name} carries outputs in cells {dirty}: clear them "
                       f"(jupyter nbconvert --clear-output --inplace {ipynb.name}) or {FIX}")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_has_a_title_and_a_self_check(source):
    nb = jupytext.read(source)
    first_md = next(c.source for c in nb.cells if c.cell_type == "markdown")
    assert first_md.startswith(f"# {source.stem[:2]} "), (
        f"{source.name} must open with a '# {source.stem[:2]} Title' heading")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "assert " in code, f"{source.name} has no self-check cell (an assert on its lesson)"
