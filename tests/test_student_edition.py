"""The student edition (tools/student_edition.py, `make student`): every solution cell becomes a
stub that keeps its ``answer_*`` names, every other cell is kept, and a notebook that breaks the
exercise convention is an error naming the chapter and the cell."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import student_edition as se

STUB = re.compile(r"^answer_\w+ = \.\.\.  # your answer$")


def notebook(*cells):
    return new_notebook(cells=list(cells))


def solution(source: str):
    return new_code_cell(source, metadata={"tags": ["solution", "hide-cell"]})


def test_solution_becomes_a_stub_and_everything_else_is_kept():
    nb = notebook(
        new_markdown_cell("**Exercise 1.** Assign the count to `answer_1`."),
        new_code_cell("xs = [1, 2, 3]", metadata={"tags": ["keep-me"]}),
        solution("%time total = sum(xs)\nhelper = total * 2\nanswer_1, answer_2 = total, helper\n"
                 "answer_3: int = 4\nanswer_1 += 0"),
        new_code_cell("from m import check_sum\ncheck_sum(answer_1, answer_2, answer_3)",
                      metadata={"tags": ["hide-output"]}),
        new_markdown_cell("after"),
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old output")]
    out = se.student_edition(nb, "99_demo")
    assert [c.source for c in out.cells[:2]] == [c.source for c in nb.cells[:2]]
    assert out.cells[2].source == ("answer_1 = ...  # your answer\nanswer_2 = ...  # your answer\n"
                                   "answer_3 = ...  # your answer")
    assert out.cells[2].metadata["tags"] == ["exercise-stub"]
    assert out.cells[3].source == nb.cells[3].source
    assert out.cells[3].metadata["tags"] == ["exercise-check"]
    assert out.cells[1].metadata["tags"] == ["keep-me"] and out.cells[1].outputs == []
    assert [c.id for c in out.cells] == [c.id for c in nb.cells]
    assert out.cells[4].source == "after"
    assert "solution" in nb.cells[2].metadata["tags"]          # the input is not modified


@pytest.mark.parametrize(("cells", "message"), [
    ([solution("x = 1"), new_code_cell("check_x(x)")],
     r"99_demo, cell 0: a solution cell must assign an `answer_\*`"),
    ([solution("answer_1 = 1"), new_code_cell("print(answer_1)")],
     r"99_demo, cell 0: solution cell not followed by a check cell"),
    ([solution("answer_1 = 1")], r"99_demo, cell 0: solution cell not followed"),
    ([solution("answer_1 = 1"), solution("answer_2 = 2"), new_code_cell("check_x(answer_2)")],
     r"99_demo, cell 0: solution cell not followed"),
    ([solution("helper = 2\nanswer_1 = helper"), new_code_cell("check_x(answer_1)"),
      new_code_cell("print(helper)")], r"99_demo, cell 2 uses `helper`.*cell 0"),
    ([new_markdown_cell("text", metadata={"tags": ["solution"]})],
     r"99_demo, cell 0: a `solution` tag on a markdown cell"),
    ([solution("answer_1 = (")], r"99_demo, cell 0: not valid Python"),
])
def test_broken_exercises_are_errors_naming_chapter_and_cell(cells, message):
    with pytest.raises(ValueError, match=message):
        se.student_edition(notebook(*cells), "99_demo")


def test_names_rebound_by_a_later_cell_are_not_solution_only():
    nb = notebook(new_code_cell("import math"), solution("import math\nanswer_1 = math.pi"),
                  new_code_cell("check_pi(answer_1)"), new_code_cell("print(math.e)"),
                  solution("i = 3\nanswer_2 = i"), new_code_cell("check_i(answer_2)"),
                  new_code_cell("for i in range(2):\n    print(i)"))
    assert se.student_edition(nb, "99_demo").cells[4].source == "answer_2 = ...  # your answer"


@pytest.mark.parametrize("stem", se.chapters())
def test_every_chapter_has_a_student_edition_without_solutions(stem):
    full = se.read_chapter(stem)
    student = se.student_edition(full, stem)
    assert len(student.cells) == len(full.cells)
    for before, after in zip(full.cells, student.cells, strict=True):
        tags = before.metadata.get("tags", [])
        if "solution" in tags:
            lines = after.source.splitlines()
            assert lines and all(STUB.match(line) for line in lines), after.source
            assert "solution" not in after.metadata["tags"]
        else:
            assert (after.cell_type, after.source) == (before.cell_type, before.source)
        assert getattr(after, "outputs", []) == []


def test_main_writes_the_requested_chapters(tmp_path):
    stem = se.chapters()[0]
    assert se.main([stem, "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"{stem}.ipynb").exists()
    with pytest.raises(SystemExit):
        se.main(["99_no_such_chapter", "--out", str(tmp_path)])
